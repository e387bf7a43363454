# frozen_string_literal: true

# A tiny gem for the development and test groups only; it must never be in a production image.
module TinyDev
  VERSION = "0.1.0"

  def self.debug?
    true
  end
end
