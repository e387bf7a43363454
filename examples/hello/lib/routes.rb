# frozen_string_literal: true

# Maps a request to [status line, body].
class Routes
  OK = "200 OK"
  NOT_FOUND = "404 Not Found"

  def initialize(greeting)
    @greeting = greeting
  end

  def call(verb, path)
    return [NOT_FOUND, "not found\n"] unless verb == "GET"

    case path
    when "/" then [OK, @greeting.text]
    when "/health" then [OK, "ok\n"]
    else [NOT_FOUND, "not found\n"]
    end
  end
end
