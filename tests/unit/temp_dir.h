// A temporary directory for a test: made under /tmp on construction
// (mkdtemp, mode 0700), removed with everything in it on destruction. Test
// code, not product code.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace tg::test {

class TempDir {
 public:
  // `prefix` names the directory (/tmp/<prefix>-XXXXXX), so that one left
  // behind by a crashed test says which test made it.
  explicit TempDir(const std::string& prefix = "tg-test") {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    const char* p = mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr) << "mkdtemp " << tmpl;
    path_ = p ? p : "/tmp";
  }
  ~TempDir() {
    std::error_code ec;
    if (path_ != "/tmp") std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const noexcept { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes `text` to file(name) and returns that path.
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(file(name), std::ios::binary) << text;
    return file(name);
  }

 private:
  std::string path_;
};

}  // namespace tg::test
