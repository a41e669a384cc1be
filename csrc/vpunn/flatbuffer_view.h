// A minimal, bounds-checked read-only view of a flatbuffer. Only what the VPUNN schema needs: tables,
// scalars, offsets, vectors and strings. Every access checks its range against the buffer size (64-bit
// arithmetic, so hostile 32-bit offsets cannot wrap) and throws vpunas::InputError on violation.
// Values are read with memcpy: the file gives no alignment guarantee we could rely on.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "common.h"

namespace vpunas::vpunn::fb {

struct Vector {
  size_t start = 0;   // byte position of element 0
  uint32_t size = 0;  // element count
};

struct Table {
  size_t pos = 0;          // position of the table (its soffset to the vtable)
  size_t vtable = 0;       // position of the vtable
  uint16_t vt_size = 0;    // vtable size in bytes
  uint16_t obj_size = 0;   // table (inline data) size in bytes
};

class View {
 public:
  View(const uint8_t* data, size_t size) : d_(data), n_(size) {}

  size_t size() const { return n_; }

  void need(size_t pos, size_t len, const char* what) const {
    if (pos > n_ || len > n_ - pos) fail(what, pos, len);
  }
  uint8_t u8(size_t pos, const char* what) const { return read<uint8_t>(pos, what); }
  uint16_t u16(size_t pos, const char* what) const { return read<uint16_t>(pos, what); }
  uint32_t u32(size_t pos, const char* what) const { return read<uint32_t>(pos, what); }
  int32_t i32(size_t pos, const char* what) const { return read<int32_t>(pos, what); }
  const uint8_t* bytes(size_t pos) const { return d_ + pos; }

  // Follows a uoffset stored at `pos` (target = pos + offset).
  size_t deref(size_t pos, const char* what) const {
    const uint64_t target = uint64_t(pos) + u32(pos, what);
    if (target >= n_) fail(what, size_t(target), 1);
    return size_t(target);
  }

  Table table(size_t pos, const char* what) const {
    Table t;
    t.pos = pos;
    const int64_t vt = int64_t(pos) - int64_t(i32(pos, what));
    if (vt < 0 || uint64_t(vt) + 4 > n_) fail(what, pos, 4, "vtable outside the file");
    t.vtable = size_t(vt);
    t.vt_size = u16(t.vtable, what);
    t.obj_size = u16(t.vtable + 2, what);
    if (t.vt_size < 4 || (t.vt_size & 1u)) fail(what, t.vtable, t.vt_size, "malformed vtable size");
    need(t.vtable, t.vt_size, what);
    if (t.obj_size < 4) fail(what, pos, t.obj_size, "malformed table size");
    need(pos, t.obj_size, what);
    return t;
  }

  // Position of field `id` inside table `t` with `width` bytes, or 0 when the field is absent.
  size_t field(const Table& t, int id, size_t width, const char* what) const {
    const size_t slot = 4 + 2 * size_t(id);
    if (slot + 2 > t.vt_size) return 0;
    const uint16_t off = u16(t.vtable + slot, what);
    if (off == 0) return 0;
    if (size_t(off) + width > t.obj_size) fail(what, t.pos + off, width, "field outside its table");
    return t.pos + off;
  }

  // Vector whose uoffset is stored at `pos`; checks that count * elem_size bytes fit.
  Vector vector_at(size_t pos, size_t elem_size, const char* what) const {
    const size_t v = deref(pos, what);
    Vector out;
    out.size = u32(v, what);
    out.start = v + 4;
    if (out.start > n_ || uint64_t(out.size) * elem_size > uint64_t(n_ - out.start))
      fail(what, out.start, size_t(uint64_t(out.size) * elem_size), "vector length exceeds the file");
    return out;
  }

  std::string string_at(size_t pos, const char* what) const {
    const Vector v = vector_at(pos, 1, what);
    return std::string(reinterpret_cast<const char*>(d_ + v.start), v.size);
  }

  [[noreturn]] void fail(const char* what, size_t pos, size_t len, const char* why = nullptr) const {
    throw InputError(std::string("corrupt .vpunn model file: ") + what + ": " +
                     (why ? why : "read out of bounds") + " (offset " + std::to_string(pos) + ", length " +
                     std::to_string(len) + ", file size " + std::to_string(n_) + ")");
  }

 private:
  template <class T>
  T read(size_t pos, const char* what) const {
    need(pos, sizeof(T), what);
    T v;
    std::memcpy(&v, d_ + pos, sizeof(T));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = byteswap(v);
#endif
    return v;
  }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  template <class T>
  static T byteswap(T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    for (size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(b[i], b[sizeof(T) - 1 - i]);
    std::memcpy(&v, b, sizeof(T));
    return v;
  }
#endif

  const uint8_t* d_;
  size_t n_;
};

}  // namespace vpunas::vpunn::fb
