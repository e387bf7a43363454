# frozen_string_literal: true

# A tiny pure-Ruby gem: string helpers for imgbuild's example app.
module TinyPure
  VERSION = "1.0.0"

  def self.shout(text)
    "#{text.to_s.upcase}!"
  end
end
