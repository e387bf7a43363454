# frozen_string_literal: true

Gem::Specification.new do |spec|
  spec.name = "tinydev"
  spec.version = "0.1.0"
  spec.summary = "A tiny development/test-only gem; BUNDLE_WITHOUT keeps it out of images"
  spec.authors = ["imgbuild"]
  spec.license = "MIT"
  spec.required_ruby_version = ">= 2.7"
  spec.files = ["lib/tinydev.rb"]
  spec.require_paths = ["lib"]
end
