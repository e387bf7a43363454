# frozen_string_literal: true

# The notes table, on a TinyPG connection.
class NoteStore
  # Several statements in one simple query run in one transaction: the advisory lock (held to its
  # end) keeps two first requests from racing to create the table.
  SCHEMA = <<~SQL
    SELECT pg_advisory_xact_lock(20250101);
    CREATE TABLE IF NOT EXISTS notes (
      id bigserial PRIMARY KEY,
      body text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );
  SQL

  def initialize(db)
    @db = db
  end

  def setup
    @db.exec(SCHEMA)
    self
  end

  # Returns the new note's id.
  def add(body)
    @db.exec_params("INSERT INTO notes (body) VALUES ($1) RETURNING id", [body]).values.first.first
  end

  def delete(id) = @db.exec_params("DELETE FROM notes WHERE id = $1", [id])

  # [{"id" => 1, "body" => "..."}, ...], oldest first.
  def all = @db.exec("SELECT id, body FROM notes ORDER BY id").rows
end
