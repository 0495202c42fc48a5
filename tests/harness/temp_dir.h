// A fresh directory under $TMPDIR (or /tmp) that is removed with everything in it when the owner goes away.
#pragma once

#include <filesystem>
#include <string_view>

namespace pooler::test {

class TempDir {
 public:
  // Creates <$TMPDIR or /tmp>/<prefix>XXXXXX with mkdtemp (mode 0700).
  explicit TempDir(std::string_view prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Removes the directory now; later calls and the destructor do nothing.
  void remove();

 private:
  std::filesystem::path path_;
  bool removed_ = false;
};

// Reads a whole file; empty when it does not exist.
std::string read_file(const std::filesystem::path& path);

// The last `lines` lines of a text, for error messages that quote a log.
std::string tail_lines(std::string_view text, std::size_t lines);

}  // namespace pooler::test
