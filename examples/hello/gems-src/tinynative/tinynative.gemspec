# frozen_string_literal: true

Gem::Specification.new do |spec|
  spec.name = "tinynative"
  spec.version = "0.1.0"
  spec.summary = "A tiny gem with a C extension, used by imgbuild's example app"
  spec.authors = ["imgbuild"]
  spec.license = "MIT"
  spec.required_ruby_version = ">= 2.7"
  spec.files = ["ext/tinynative/extconf.rb", "ext/tinynative/tinynative.c", "lib/tinynative.rb"]
  spec.extensions = ["ext/tinynative/extconf.rb"]
  spec.require_paths = ["lib"]
end
