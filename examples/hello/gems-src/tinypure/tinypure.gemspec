# frozen_string_literal: true

Gem::Specification.new do |spec|
  spec.name = "tinypure"
  spec.version = "1.0.0"
  spec.summary = "A tiny pure-Ruby gem used by imgbuild's example app"
  spec.authors = ["imgbuild"]
  spec.license = "MIT"
  spec.required_ruby_version = ">= 2.7"
  spec.files = ["lib/tinypure.rb"]
  spec.require_paths = ["lib"]
end
