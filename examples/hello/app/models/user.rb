# frozen_string_literal: true

# A stand-in for an ActiveRecord model.
class User
  attr_reader :name

  def initialize(name)
    @name = name
  end
end
