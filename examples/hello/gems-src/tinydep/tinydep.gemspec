# frozen_string_literal: true

Gem::Specification.new do |spec|
  spec.name = "tinydep"
  spec.version = "0.2.0"
  spec.summary = "A tiny pure-Ruby gem with a dependency, used by imgbuild's example app"
  spec.authors = ["imgbuild"]
  spec.license = "MIT"
  spec.required_ruby_version = ">= 2.7"
  spec.files = ["lib/tinydep.rb"]
  spec.require_paths = ["lib"]
  spec.add_dependency "tinypure", "~> 1.0"
end
