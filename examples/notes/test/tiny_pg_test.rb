# frozen_string_literal: true

require_relative "test_helper"

# TinyPG against the PostgreSQL server named by DATABASE_URL.
class TinyPGTest < Minitest::Test
  include ServiceHelpers

  def setup
    @db = TinyPG.connect(database_url)
  end

  def teardown
    @db&.close
  end

  def test_connects_and_reports_the_authentication_method
    assert_includes %w[trust cleartext md5 scram-sha-256], @db.auth_method
    assert_equal "UTF8", @db.parameters["server_encoding"]
    assert_equal [[1, "one", true, nil]], @db.exec("SELECT 1 AS n, 'one' AS s, true AS b, NULL AS z").values
  end

  def test_creates_a_table_inserts_and_selects_with_parameters
    @db.exec("CREATE TEMP TABLE t (id serial PRIMARY KEY, body text)")
    tricky = "it's \"quoted\"; a backslash \\ and '); DROP TABLE t; -- and ünïcödé"
    inserted = @db.exec_params("INSERT INTO t (body) VALUES ($1), ($2), ($3)", [tricky, "plain", nil])
    assert_equal "INSERT 0 3", inserted.tag

    result = @db.exec_params("SELECT id, body FROM t WHERE body = $1 OR body IS NULL ORDER BY id", [tricky])
    assert_equal %w[id body], result.columns
    assert_equal [{ "id" => 1, "body" => tricky }, { "id" => 3, "body" => nil }], result.rows
    assert_equal Encoding::UTF_8, result.rows.first["body"].encoding
    assert_equal 3, @db.exec("SELECT count(*) FROM t").values.first.first
  end

  def test_runs_several_statements_in_one_simple_query
    result = @db.exec("CREATE TEMP TABLE u (x int); INSERT INTO u VALUES (1), (2); SELECT sum(x) FROM u")
    assert_equal [[3]], result.values
    assert_equal "SELECT 1", result.tag
  end

  def test_a_bad_statement_raises_the_servers_error_and_the_session_goes_on
    error = assert_raises(TinyPG::Error) { @db.exec("SELEC 1") }
    assert_match(/syntax error at or near "SELEC"/, error.message)
    assert_equal "42601", error.code

    error = assert_raises(TinyPG::Error) { @db.exec_params("SELECT * FROM no_such_table WHERE id = $1", [1]) }
    assert_equal %(relation "no_such_table" does not exist), error.fields["M"]
    assert_equal "42P01", error.code

    assert_equal [[2]], @db.exec("SELECT 2").values
  end

  def test_a_wrong_password_is_refused_unless_the_server_trusts_everyone
    settings = TinyPG.parse_url(database_url)
    settings[:password] = "not-#{settings[:password]}"
    if @db.auth_method == "trust"
      TinyPG::Connection.new(**settings).close # trust: any password goes
    else
      error = assert_raises(TinyPG::Error) { TinyPG::Connection.new(**settings) }
      assert_equal "28P01", error.code, error.message
    end
  end
end

# TinyPG.parse_url: no server needed.
class TinyPGUrlTest < Minitest::Test
  def test_parses_database_urls
    assert_equal({ host: "db", port: 6543, user: "us@er", password: "p:ss/w", database: "my_db" },
                 TinyPG.parse_url("postgres://us%40er:p%3Ass%2Fw@db:6543/my_db"))
    assert_equal({ host: "db", port: 5432, user: "postgres", password: nil, database: "postgres" },
                 TinyPG.parse_url("postgresql://db"))
    assert_raises(ArgumentError) { TinyPG.parse_url("mysql://db/x") }
  end
end
