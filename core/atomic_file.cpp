#include "core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace smyrf {
namespace {

std::string errno_str(int e) {
  return std::string(std::strerror(e)) + " (errno " + std::to_string(e) + ")";
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Unique per process and call, so two writers (threads or processes) never share a temp file
// and a stale temp left by a crashed run is never reused or trusted.
std::string temp_path_for(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  return dir + "." + base + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

class FdWriter : public AtomicFileWriter {
 public:
  FdWriter(int fd, const std::string& path, const char* op) : fd_(fd), path_(path), op_(op) {}
  void write(const void* data, size_t nbytes) override {
    const char* p = static_cast<const char*>(data);
    // Small writes (JSON header pieces) are batched; large tensor payloads go straight through.
    if (buf_.size() + nbytes <= kBuf) {
      buf_.append(p, nbytes);
      return;
    }
    flush();
    if (nbytes <= kBuf) {
      buf_.append(p, nbytes);
      return;
    }
    write_all(p, nbytes);
  }
  void flush() {
    write_all(buf_.data(), buf_.size());
    buf_.clear();
  }

 private:
  static constexpr size_t kBuf = 1 << 16;
  void write_all(const char* p, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0)
        throw Error(op_, "writing '" + path_ + "' failed: " + errno_str(errno),
                    "check free disk space and permissions");
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
  int fd_;
  std::string path_;
  const char* op_;
  std::string buf_;
};

}  // namespace

void write_file_atomic(const std::string& path, const std::function<void(AtomicFileWriter&)>& fill,
                       const char* op) {
  SMYRF_CHECK(!path.empty(), op, "empty output path");
  const std::string tmp = temp_path_for(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int e = errno;
    throw Error(op, "cannot create temp file '" + tmp + "' for '" + path + "': " + errno_str(e),
                "the directory '" + dir_of(path) + "' must exist and be writable");
  }
  // From here on every exit path either renames the temp file or unlinks it.
  bool fd_open = true;
  try {
    FdWriter w(fd, path, op);
    fill(w);
    w.flush();
    if (::fsync(fd) != 0) {
      const int e = errno;
      throw Error(op, "fsync of '" + tmp + "' failed: " + errno_str(e),
                  "the disk may be full or failing");
    }
    fd_open = false;
    if (::close(fd) != 0) {
      const int e = errno;
      throw Error(op, "closing '" + tmp + "' failed: " + errno_str(e),
                  "the disk may be full or failing");
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const int e = errno;
      throw Error(op, "cannot rename '" + tmp + "' to '" + path + "': " + errno_str(e),
                  "is the target a directory, or on another file system?");
    }
  } catch (...) {
    if (fd_open) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // The rename is only durable once the directory entry is on disk. Failing here would be
  // misleading (the new file is complete and in place), so an fsync error on the directory is
  // not reported; some file systems refuse fsync on directories altogether.
  const int dfd = ::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, const std::string& contents, const char* op) {
  write_file_atomic(
      path, [&](AtomicFileWriter& w) { w.write(contents); }, op);
}

std::string read_file(const std::string& path, const char* op) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    const int e = errno;
    throw Error(op, "cannot open '" + path + "': " + errno_str(e), "check the path");
  }
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  SMYRF_CHECK(!bad, op, "reading '" << path << "' failed");
  return out;
}

}  // namespace smyrf
