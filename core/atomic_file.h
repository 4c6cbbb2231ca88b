// Atomic whole-file writes: the target path holds either its old contents or the complete new
// contents, never a partial file, even if the process dies or the disk fills mid-write.
//
// The bytes go to a uniquely named temp file in the target's directory (same file system, so
// the rename is atomic), which is flushed and fsync'ed, renamed over the target, and then the
// directory is fsync'ed so the rename itself survives a power loss. On any failure the temp
// file is removed, the target is untouched, and an smyrf::Error names `op`, the path and errno.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

namespace smyrf {

// Sink handed to the fill callback; write() throws smyrf::Error on an I/O failure.
class AtomicFileWriter {
 public:
  virtual ~AtomicFileWriter() = default;
  virtual void write(const void* data, size_t nbytes) = 0;
  void write(const std::string& s) { write(s.data(), s.size()); }
};

// Calls fill(writer) to produce the contents. An exception thrown by fill aborts the write
// (the temp file is removed, the target untouched) and propagates unchanged.
void write_file_atomic(const std::string& path, const std::function<void(AtomicFileWriter&)>& fill,
                       const char* op = "atomic_file");
void write_file_atomic(const std::string& path, const std::string& contents,
                       const char* op = "atomic_file");

// Reads a whole file; throws smyrf::Error(op, ...) naming the path when it cannot.
std::string read_file(const std::string& path, const char* op = "read_file");

}  // namespace smyrf
