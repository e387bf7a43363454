# frozen_string_literal: true

require "tinynative/tinynative"

# TinyNative.add is defined by the C extension (ext/tinynative/tinynative.c).
module TinyNative
  VERSION = "0.1.0"
end
