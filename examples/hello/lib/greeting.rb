# frozen_string_literal: true

require "tinydep"
require "tinynative"

# The text of GET /: proves the bundled gems load (tinydep -> tinypure, and tinynative's C code).
class Greeting
  def initialize(config, user)
    @config = config
    @user = user
  end

  def text
    "#{@config.fetch('greeting')}, #{@user.name}! " \
      "hello from tinydep: #{TinyDep.greet(@user.name)}; native add: #{TinyNative.add(2, 3)}\n"
  end
end
