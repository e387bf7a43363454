# frozen_string_literal: true

require "tinypure"

# A tiny gem that depends on another one (tinypure ~> 1.0).
module TinyDep
  VERSION = "0.2.0"

  def self.greet(name)
    "#{TinyPure.shout('hi')} #{name}"
  end
end
