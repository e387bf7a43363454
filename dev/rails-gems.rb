# dev/rails-gems.rb OUT_DIR: packs the .gem files of examples/rails from the unpacked Debian trees
# that dev/rails-gems.sh prepared in the current directory (its "plan" says what to pack from
# where). No network, no compiler: a gemspec and its files are all a .gem holds.
#
# The bytes depend only on the inputs, not on the Ruby that packs them: file times come from
# SOURCE_DATE_EPOCH, and the RubyGems version a .gem records is pinned (RECORDED_RUBYGEMS, the
# RubyGems of Ruby 3.3.8, which installs them) instead of the packer's own. Packed by Debian 12's
# Ruby 3.1 (RubyGems 3.3.15) they are byte-identical to the same gems packed by Ruby 3.3.8.
require "rubygems"
require "rubygems/package"
require "rubygems/user_interaction"
require "fileutils"

OUT = File.expand_path(ARGV.fetch(0))
RECORDED_RUBYGEMS = "3.5.22"
SKIP = File.readlines("skip", chomp: true).reject(&:empty?)
MANIFEST = []
FileUtils.mkdir_p(OUT)
Gem::DefaultUserInteraction.ui = Gem::SilentUI.new  # "Successfully built RubyGem" x 43

# RubyGems stamps its own version into a spec it writes (mark_version, also called by to_yaml)
# and its validation insists on that version; this spec records RECORDED_RUBYGEMS instead and
# shows the packer's version to the validation only.
module RecordedRubygems
  def mark_version
    @rubygems_version = RECORDED_RUBYGEMS
  end

  def validate(*args)
    @rubygems_version = Gem::VERSION
    super
  ensure
    @rubygems_version = RECORDED_RUBYGEMS
  end
end

def regular_files(dir)
  Dir.chdir(dir) do
    Dir.glob("**/*", File::FNM_DOTMATCH)
       .select { |f| File.file?(f) && !File.symlink?(f) && f !~ %r{(\A|/)\.git/} }
       .sort
  end
end

# all_files: every regular file of the gem directory (Debian's installed gemspecs have no usable
# file list); otherwise the spec's own list, less what is absent (reported).
def pack(spec, dir, source, note: nil, all_files: false)
  Dir.chdir(dir) do
    files = all_files ? regular_files(".") : spec.files.select { |f| File.file?(f) }
    missing = all_files ? [] : spec.files.reject { |f| File.exist?(f) }
    spec.files = files
    spec.test_files = spec.test_files.select { |f| File.file?(f) }
    spec.extra_rdoc_files = spec.extra_rdoc_files.select { |f| File.file?(f) }
    spec.extensions = spec.extensions.select { |f| File.file?(f) }
    spec.executables = spec.executables.select { |e| File.file?(File.join(spec.bindir, e)) }
    spec.signing_key = nil
    spec.cert_chain = []
    spec.extend(RecordedRubygems)
    Gem::Package.build(spec, false, false, File.join(OUT, spec.file_name))
    # (net-pop's spec lists .github/ files that its release tree does not have)
    note = [note, "#{missing.size} listed file(s) absent: #{missing.first(5).join(' ')}"].compact.join("; ") unless missing.empty?
    MANIFEST << [spec.name, spec.version.to_s, spec.extensions.empty? ? "pure" : "native", source, note].compact
  end
end

def deb_gems(root)
  specs = Dir.glob("#{root}/usr/{share,lib/*}/rubygems-integration/*/specifications/*.gemspec")
  raise "no gemspec in #{root}" if specs.empty?
  specs.map do |path|
    spec = Gem::Specification.load(path) or raise "cannot load #{path}"
    next if SKIP.include?(spec.name)
    dir = File.join(File.dirname(path), "..", "gems", spec.full_name)
    unless File.directory?(dir)
      # Older Debian layout: library files in /usr/lib/ruby/vendor_ruby, executables in /usr/bin.
      arch = Dir.glob("#{root}/usr/lib/*/ruby/vendor_ruby/**/*.so")
      raise "#{spec.full_name}: compiled extension only (#{arch.first}), cannot repack" unless arch.empty?
      dir = "stage/#{spec.full_name}"
      FileUtils.mkdir_p(dir)
      FileUtils.cp_r("#{root}/usr/lib/ruby/vendor_ruby/.", "#{dir}/lib")
      spec.executables.each do |e|
        FileUtils.mkdir_p("#{dir}/#{spec.bindir}")
        FileUtils.cp("#{root}/usr/bin/#{e}", "#{dir}/#{spec.bindir}/#{e}")
      end
    end
    [spec, dir]
  end.compact
end

File.readlines("plan", chomp: true).each do |line|
  kind, what, source = line.split(" ", 3)
  case kind
  when "gemspec"
    path = Dir.glob(what).first or raise "no #{what}"
    spec = Dir.chdir(File.dirname(path)) { Gem::Specification.load(File.basename(path)) }
    raise "cannot load #{path}" unless spec
    pack(spec, File.dirname(path), source)
  when "deb"
    deb_gems(what).each do |spec, dir|
      note = nil
      all = true
      if spec.name == "nio4r"
        # Debian ships nio4r's compiled extension and libev, not the extension's C sources, and
        # its source package is not served here: the Ruby half only, which runs with NIO4R_PURE.
        spec.extensions = []
        spec.files = Dir.chdir(dir) { regular_files("lib") }.map { |f| "lib/#{f}" }
        all = false
        spec.post_install_message = "nio4r #{spec.version} repacked without its C extension: " \
                                    "set NIO4R_PURE=true (pure-Ruby selector)"
        note = "no C extension: needs NIO4R_PURE=true"
      end
      pack(spec, dir, source, note: note, all_files: all)
    end
  when "bundled"
    gdir = Dir.glob("ruby/.bundle/gems/#{what}-[0-9]*").first or raise "no bundled gem #{what}"
    full = File.basename(gdir)
    path = ["ruby/.bundle/specifications/#{full}.gemspec", "#{gdir}/.bundled.#{full}.gemspec"].find { |p| File.file?(p) }
    spec = Gem::Specification.load(path) or raise "cannot load #{path}"
    pack(spec, gdir, source)
  else
    raise "bad plan line: #{line}"
  end
end

File.write(File.join(OUT, "manifest.tsv"), MANIFEST.sort.map { |r| r.join("\t") }.join("\n") + "\n")
