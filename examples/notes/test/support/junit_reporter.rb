# frozen_string_literal: true

require "fileutils"
require "socket"
require "time"

module Minitest
  # Writes the run as JUnit XML, the format CI systems (and `imgbuild verify`) collect:
  #   <testsuites> with one <testsuite> per test class, one <testcase classname name time file line
  #   assertions> per test, holding <failure message type>, <error message type> or <skipped message>.
  # The file is $JUNIT_DIR/junit.xml, tmp/test-results/junit.xml under the app by default. Plain
  # string building, no XML library: REXML is a bundled gem, not loadable under Bundler without
  # being in the Gemfile. It only reports; minitest's own reporters decide the exit status.
  class JunitReporter < AbstractReporter
    attr_reader :path

    def initialize(path)
      super()
      @path = path
      @results = []
    end

    def start
      @started_at = Time.now
    end

    def record(result)
      synchronize { @results << result }
    end

    def report
      FileUtils.mkdir_p(File.dirname(path))
      File.write("#{path}.tmp", xml)
      File.rename("#{path}.tmp", path)
    end

    def xml
      suites = @results.group_by(&:klass).sort.map { |klass, results| suite(klass, results.sort_by(&:name)) }
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
        "<testsuites#{attrs(name: "minitest", **counts(@results))}>\n#{suites.join}</testsuites>\n"
    end

    private

    def counts(results)
      { tests: results.size, failures: results.count { |r| !r.passed? && !r.skipped? && !r.error? },
        errors: results.count(&:error?), skipped: results.count(&:skipped?),
        assertions: results.sum(&:assertions), time: format("%.6f", results.sum(&:time)) }
    end

    def suite(klass, results)
      cases = results.map { |result| testcase(result) }
      "  <testsuite#{attrs(name: klass, **counts(results), timestamp: (@started_at || Time.now).iso8601,
                            hostname: Socket.gethostname)}>\n#{cases.join}  </testsuite>\n"
    end

    def testcase(result)
      file, line = result.source_location
      head = "    <testcase#{attrs(classname: result.klass, name: result.name,
                                   time: format("%.6f", result.time), file: relative(file), line:,
                                   assertions: result.assertions)}"
      return "#{head}/>\n" if result.failures.empty?

      "#{head}>\n#{result.failures.map { |failure| outcome(failure) }.join}    </testcase>\n"
    end

    def outcome(failure)
      case failure
      when Skip then "      <skipped#{attrs(message: failure.message)}/>\n"
      when UnexpectedError
        tag("error", failure.error.message, failure.error.class.name, failure.message)
      else
        text = "#{failure.message}\n#{relative(failure.location)}"
        tag("failure", failure.message, failure.class.name, text)
      end
    end

    def tag(name, message, type, text)
      first_line = message.to_s.lines.first.to_s.chomp
      "      <#{name}#{attrs(message: first_line, type:)}>#{clean(text).encode(xml: :text)}</#{name}>\n"
    end

    def attrs(pairs) = pairs.map { |key, value| " #{key}=#{clean(value).encode(xml: :attr)}" }.join

    # XML 1.0 allows neither invalid UTF-8 nor most control characters, even escaped.
    def clean(value)
      text = value.to_s.dup.force_encoding(Encoding::UTF_8).scrub("\uFFFD")
      text.gsub(/[^\t\n\r\u0020-\u{D7FF}\u{E000}-\u{FFFD}\u{10000}-\u{10FFFF}]/, "\uFFFD")
    end

    def relative(path) = path.to_s.delete_prefix("#{Dir.pwd}/")
  end

  # The plugin hooks minitest calls for every name in Minitest.extensions.
  def self.plugin_junit_options(opts, options)
    opts.on("--junit-dir DIR", "Write junit.xml into DIR (default: $JUNIT_DIR or tmp/test-results)") do |dir|
      options[:junit_dir] = dir
    end
  end

  def self.plugin_junit_init(options)
    dir = options[:junit_dir] || ENV["JUNIT_DIR"].to_s
    dir = File.expand_path("../../tmp/test-results", __dir__) if dir.empty?
    reporter << JunitReporter.new(File.join(File.expand_path(dir), "junit.xml"))
  end
end

Minitest.extensions << "junit" unless Minitest.extensions.include?("junit")
