// The thin pybind11 layer: converts between Python objects and the native
// core, releases the GIL around I/O and checksum work, and maps
// tfckpt::Error to the exception classes of tfckpt.errors (and FileError to OSError).
// Index returns named rows (struct sequences: tuples whose items also have names).
#include <cerrno>
#include <map>
#include <memory>
#include <string>

#include <pybind11/pybind11.h>
#include <structmember.h>
#include <pybind11/stl.h>

#include "bundle.h"
#include "coding.h"
#include "crc32c.h"
#include "errors.h"
#include "mapped_file.h"
#include "snappy.h"
#include "stats.h"
#include "table.h"
#include "tar.h"
#include "writer.h"

namespace py = pybind11;
using namespace tfckpt;

namespace {

// A read-only view of a Python object's bytes, held for as long as needed.
class BufferRef {
 public:
  explicit BufferRef(const py::object& obj) : owner_(obj) {
    if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_SIMPLE) != 0) throw py::error_already_set();
  }
  ~BufferRef() {
    py::gil_scoped_acquire gil;
    PyBuffer_Release(&view_);
  }
  BufferRef(const BufferRef&) = delete;
  BufferRef& operator=(const BufferRef&) = delete;
  const uint8_t* data() const { return static_cast<const uint8_t*>(view_.buf); }
  size_t size() const { return static_cast<size_t>(view_.len); }
  std::string_view view() const {
    return std::string_view(reinterpret_cast<const char*>(data()), size());
  }

 private:
  py::object owner_;
  Py_buffer view_;
};

std::string KeyBytes(const py::handle& key) {
  if (PyBytes_Check(key.ptr())) return std::string(py::reinterpret_borrow<py::bytes>(key));
  if (PyUnicode_Check(key.ptr())) {
    PyObject* b = PyUnicode_AsEncodedString(key.ptr(), "utf-8", "surrogateescape");
    if (!b) throw py::error_already_set();
    std::string s(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b));
    Py_DECREF(b);
    return s;
  }
  throw py::type_error("a checkpoint key must be str or bytes");
}

// A key's bytes viewed in place, without a copy (lookups are the hot path of reading a
// whole checkpoint): a bytes key's own, a str key's cached UTF-8. A str holding surrogate
// escapes (bytes that are not UTF-8) has no UTF-8 form: it is encoded into `storage`.
std::string_view KeyView(const py::handle& key, std::string* storage) {
  PyObject* k = key.ptr();
  if (PyBytes_Check(k)) return {PyBytes_AS_STRING(k), static_cast<size_t>(PyBytes_GET_SIZE(k))};
  if (PyUnicode_Check(k)) {
    Py_ssize_t n;
    if (const char* utf8 = PyUnicode_AsUTF8AndSize(k, &n)) return {utf8, static_cast<size_t>(n)};
    PyErr_Clear();
  }
  *storage = KeyBytes(key);
  return *storage;
}

py::str KeyStr(std::string_view key) {
  // Keys are nearly always ASCII; that check is far cheaper than a UTF-8 decode.
  bool ascii = true;
  for (unsigned char c : key) {
    if (c >= 0x80) {
      ascii = false;
      break;
    }
  }
  PyObject* s = ascii ? PyUnicode_FromStringAndSize(key.data(), key.size())
                      : PyUnicode_DecodeUTF8(key.data(), key.size(), "surrogateescape");
  if (!s) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(s);
}

// A file system path (str, bytes or os.PathLike) as the bytes the OS sees, so that
// names that are not UTF-8 (str with surrogate escapes, as os.fsdecode gives) work.
std::string PathBytes(const py::handle& path) {
  PyObject* fs = PyOS_FSPath(path.ptr());
  if (!fs) throw py::error_already_set();
  py::object keep = py::reinterpret_steal<py::object>(fs);
  if (PyBytes_Check(fs)) return std::string(PyBytes_AS_STRING(fs), PyBytes_GET_SIZE(fs));
  PyObject* b = PyUnicode_EncodeFSDefault(fs);
  if (!b) throw py::error_already_set();
  std::string s(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b));
  Py_DECREF(b);
  return s;
}

py::str PathStr(const std::string& path) {
  PyObject* s = PyUnicode_DecodeFSDefaultAndSize(path.data(), static_cast<Py_ssize_t>(path.size()));
  if (!s) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(s);
}

py::list SlicesList(const std::vector<Slice>& slices) {
  py::list out;
  for (const Slice& s : slices) {
    py::list extents;
    for (const Extent& e : s) extents.append(py::make_tuple(e.start, e.length));
    out.append(std::move(extents));
  }
  return out;
}

Slice SliceFromPython(const py::handle& obj) {
  Slice slice;
  for (const py::handle& item : obj) {
    auto pair = item.cast<std::pair<int64_t, int64_t>>();
    Extent e;
    e.start = pair.first;
    e.length = pair.second;
    slice.push_back(e);
  }
  return slice;
}

// A new reference, or the pending Python error raised.
PyObject* Checked(PyObject* obj) {
  if (!obj) throw py::error_already_set();
  return obj;
}

// A shape as a new tuple of ints.
PyObject* ShapeObject(const std::vector<int64_t>& shape) {
  PyObject* t = Checked(PyTuple_New(static_cast<Py_ssize_t>(shape.size())));
  for (size_t d = 0; d < shape.size(); ++d) {
    PyObject* v = PyLong_FromLongLong(shape[d]);
    if (!v) {
      Py_DECREF(t);
      throw py::error_already_set();
    }
    PyTuple_SET_ITEM(t, d, v);
  }
  // A tuple of ints is in no reference cycle: the garbage collector need not track it (it
  // would untrack it itself at its first collection).
  if (PyObject_GC_IsTracked(t)) PyObject_GC_UnTrack(t);
  return t;
}

// A 128-bit sum as a Python int (sums of int64 values can leave int64's range).
py::int_ BigInt(__int128 v) {
  if (v >= INT64_MIN && v <= INT64_MAX) return py::int_(static_cast<int64_t>(v));
  py::int_ hi(static_cast<int64_t>(v >> 64));
  py::int_ lo(static_cast<uint64_t>(v & ~uint64_t{0}));
  return py::reinterpret_steal<py::int_>(
      Checked(PyNumber_Add(py::reinterpret_steal<py::object>(
                               Checked(PyNumber_Lshift(hi.ptr(), py::int_(64).ptr()))).ptr(),
                           lo.ptr())));
}

// The named rows Index returns: struct sequences, tuples whose items also have names
// (like os.stat_result), so callers unpack them by position or read them by field. The
// types are made once, at import; the twin makes namedtuples of the same names and fields.
struct RowType {
  const char* name;  // as the module attribute, and in a row's repr
  const char* doc;
  std::vector<const char*> fields;
  PyTypeObject* type = nullptr;
};

RowType g_header_row{
    "HeaderRow", "Index.header: the bundle header; endianness 0 little, 1 big.",
    {"num_shards", "endianness", "producer", "min_consumer", "bad_consumers"}};
RowType g_entry_row{
    "EntryRow",
    "Index.entry(key): a decoded BundleEntryProto; crc32c masked, as stored; slices as "
    "[(start, length), ...] per stored slice, length -1 the whole dimension.",
    {"dtype", "shape", "shard_id", "offset", "size", "crc32c", "slices", "num_elements"}};
RowType g_listing_row{
    "ListingRow", "Index.listing(): one per listed key; error None for a decodable entry.",
    {"key", "dtype", "shape", "size", "num_elements", "error", "partitioned"}};
RowType g_totals_row{
    "TotalsRow",
    "Index.totals(): listed keys, their elements where decodable, listed keys with a bad "
    "entry, listed partitioned keys, {dtype: listed keys}, and the bytes of every decodable "
    "unpartitioned entry (slice entries included): what the data shards must hold at least.",
    {"keys", "elements", "bad", "partitioned", "dtype_counts", "data_bytes"}};

// Makes row.type and adds it to the module.
void AddRowType(py::module_& m, RowType* row) {
  // The field and type descriptions must outlive the type: they are kept for good.
  auto* fields = new std::vector<PyStructSequence_Field>();
  for (const char* f : row->fields) fields->push_back({f, nullptr});
  fields->push_back({nullptr, nullptr});
  auto* qualified = new std::string(m.attr("__name__").cast<std::string>() + "." + row->name);
  PyStructSequence_Desc desc{qualified->c_str(), row->doc, fields->data(),
                             static_cast<int>(row->fields.size())};
  py::object type = py::reinterpret_steal<py::object>(
      Checked(reinterpret_cast<PyObject*>(PyStructSequence_NewType(&desc))));
  // __module__ comes from the qualified name; a bare __name__ makes a row's repr read
  // like the twin's namedtuple: EntryRow(dtype=1, shape=(3,), ...).
  type.attr("__name__") = row->name;
  py::tuple names(row->fields.size());
  for (size_t i = 0; i < row->fields.size(); ++i) names[i] = py::str(row->fields[i]);
  type.attr("_fields") = names;  // as a namedtuple has
  m.attr(row->name) = type;
  row->type = reinterpret_cast<PyTypeObject*>(type.release().ptr());  // kept for good
}

// A new row whose items are then set with Put. Allocated with tp_alloc, as any instance
// of a type with items is: PyStructSequence_New would look the field counts up in the
// type's dict on every call. Like a new tuple, the row is tracked by the garbage collector.
py::object NewRow(const RowType& row) {
  return py::reinterpret_steal<py::object>(
      Checked(row.type->tp_alloc(row.type, static_cast<Py_ssize_t>(row.fields.size()))));
}

// Sets item i of a new tuple or row to `item`, a new reference (the pending error raised
// if it is null).
void Put(const py::object& t, Py_ssize_t i, PyObject* item) {
  PyTuple_SET_ITEM(t.ptr(), i, Checked(item));
}

// A Python class whose instances hold an entry in slots named key, dtype_code, shape,
// shard_id, offset, size, crc32c, slices, num_elements, dtype (tfckpt.entries.Entry): the
// slots' offsets, checked, so that the core can fill a new instance as CPython's own
// __init__ would, without calling into Python per field. `dtype` comes from the class's
// dict _DTYPES (numpy dtype by DataType code), filled by its _dtype_of(code) the first
// time a code is seen; a code without one (None) makes an instance of _NO_NUMPY_DTYPE, a
// subclass of the same layout.
struct EntryClass {
  static constexpr int kFields = 10;
  PyTypeObject* type;
  PyTypeObject* no_numpy_type;
  Py_ssize_t offsets[kFields];
  py::object cls;
  py::object dtypes;  // the class's _DTYPES dict

  static Py_ssize_t SlotOffset(const py::handle& cls, const char* name) {
    py::object d = cls.attr(name);
    if (Py_TYPE(d.ptr()) != &PyMemberDescr_Type) {
      throw py::type_error(std::string("an entry class must have a slot named ") + name);
    }
    const PyMemberDef* m = reinterpret_cast<PyMemberDescrObject*>(d.ptr())->d_member;
    if (m->type != T_OBJECT_EX || (m->flags & READONLY) != 0) {
      throw py::type_error(std::string("slot ") + name + " is not a plain object slot");
    }
    return m->offset;
  }

  explicit EntryClass(const py::handle& entry_class)
      : cls(py::reinterpret_borrow<py::object>(entry_class)) {
    static const char* const kNames[kFields] = {
        "key",  "dtype_code", "shape",  "shard_id",     "offset",
        "size", "crc32c",     "slices", "num_elements", "dtype"};
    if (!PyType_Check(cls.ptr())) throw py::type_error("an entry class must be a class");
    type = reinterpret_cast<PyTypeObject*>(cls.ptr());
    for (int f = 0; f < kFields; ++f) offsets[f] = SlotOffset(cls, kNames[f]);
    dtypes = cls.attr("_DTYPES");
    if (!PyDict_Check(dtypes.ptr())) throw py::type_error("an entry class's _DTYPES must be a dict");
    py::object sub = cls.attr("_NO_NUMPY_DTYPE");
    if (!PyType_Check(sub.ptr()) || !PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(sub.ptr()), type) ||
        reinterpret_cast<PyTypeObject*>(sub.ptr())->tp_basicsize != type->tp_basicsize) {
      throw py::type_error("an entry class's _NO_NUMPY_DTYPE must be a subclass of its layout");
    }
    no_numpy_type = reinterpret_cast<PyTypeObject*>(sub.ptr());
  }

  // The numpy dtype of DataType `code` (a new reference), or null if it has none.
  PyObject* Dtype(PyObject* code) const {
    PyObject* d = PyDict_GetItemWithError(dtypes.ptr(), code);  // borrowed
    if (d != nullptr) {
      Py_INCREF(d);
      return d;
    }
    if (PyErr_Occurred()) throw py::error_already_set();
    py::object made = cls.attr("_dtype_of")(py::reinterpret_borrow<py::object>(code));
    return made.is_none() ? nullptr : made.release().ptr();
  }
};

// An opened index, holding the buffer it was parsed from.
class PyIndex {
 public:
  PyIndex(const py::object& buffer, const std::string& name)
      : buffer_(std::make_unique<BufferRef>(buffer)) {
    if (buffer_->size() < (size_t{64} << 10)) {  // a small index: parsed in microseconds
      bundle_ = std::make_unique<Bundle>(buffer_->data(), buffer_->size(), name);
      return;
    }
    py::gil_scoped_release release;
    bundle_ = std::make_unique<Bundle>(buffer_->data(), buffer_->size(), name);
  }

  // Key `i` as a str, made once per index: keys(), entry_objects() and listing() hand out
  // the same objects, whose hashes are then computed once (a dict lookup by a key from
  // keys() compares pointers).
  PyObject* KeyObject(size_t i) const {
    if (key_strs_.empty()) key_strs_.resize(bundle_->size());
    py::object& s = key_strs_[i];
    if (!s) s = KeyStr(bundle_->key(i));
    return s.inc_ref().ptr();
  }

  size_t Lookup(const py::handle& key) const {
    std::string storage;
    std::string_view k = KeyView(key, &storage);
    ptrdiff_t i = k.empty() ? -1 : bundle_->Find(k);
    if (i < 0) {
      throw Error(ErrorKind::kKeyNotFound, "Key " + Printable(std::string(k)) +
                                               " not found in checkpoint " +
                                               bundle_->table().name());
    }
    return static_cast<size_t>(i);
  }

  // Built with the C API directly, as Listing is: a loop over every key is the hot path
  // of reading a whole checkpoint.
  py::object Entry(const py::handle& key) const {
    size_t i = Lookup(key);
    const tfckpt::Entry& e = bundle_->entry(i);
    if (!e.error.empty()) {
      throw Corrupt(bundle_->table().name() + ": entry for key " + Printable(bundle_->key(i)) +
                    ": " + e.error);
    }
    py::object row = NewRow(g_entry_row);
    Put(row, 0, PyLong_FromLong(e.dtype));
    Put(row, 1, ShapeObject(e.shape));
    Put(row, 2, PyLong_FromLong(e.shard_id));
    Put(row, 3, PyLong_FromLongLong(e.offset));
    Put(row, 4, PyLong_FromLongLong(e.size));
    Put(row, 5, PyLong_FromUnsignedLong(e.crc32c));
    Put(row, 6, SlicesList(e.slices).release().ptr());
    Put(row, 7, PyLong_FromLongLong(e.num_elements));
    return row;
  }

  // Entry `i` as a new instance of `entry_class` (see EntryClass), its slices from
  // `slices_of(list of [(start, length), ...])`.
  py::object EntryObject(const EntryClass& cls, size_t i, const py::handle& slices_of) const {
    const tfckpt::Entry& e = bundle_->entry(i);
    py::object code = py::reinterpret_steal<py::object>(Checked(PyLong_FromLong(e.dtype)));
    PyObject* dtype = cls.Dtype(code.ptr());  // a new reference, or null: no numpy dtype
    PyTypeObject* type = dtype != nullptr ? cls.type : cls.no_numpy_type;
    py::object obj = py::reinterpret_steal<py::object>(type->tp_alloc(type, 0));
    if (!obj) {
      Py_XDECREF(dtype);
      throw py::error_already_set();
    }
    py::object slices = e.slices.empty() ? py::reinterpret_steal<py::object>(Checked(PyTuple_New(0)))
                                         : slices_of(SlicesList(e.slices));
    PyObject* values[EntryClass::kFields] = {
        KeyObject(i),                      code.release().ptr(),
        ShapeObject(e.shape),              PyLong_FromLong(e.shard_id),
        PyLong_FromLongLong(e.offset),     PyLong_FromLongLong(e.size),
        PyLong_FromUnsignedLong(e.crc32c), slices.release().ptr(),
        PyLong_FromLongLong(e.num_elements), dtype};
    bool failed = false;
    for (int f = 0; f < EntryClass::kFields; ++f) {
      // Each slot of the fresh object is null; it takes the new reference. (A null value
      // leaves its slot empty: the object is then dropped below; `dtype` may be null.)
      *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(obj.ptr()) + cls.offsets[f]) =
          values[f];
      failed |= values[f] == nullptr && f != EntryClass::kFields - 1;
    }
    if (failed) throw py::error_already_set();
    // An entry without slices holds only a str, ints, a tuple of ints and a numpy dtype,
    // none of which can refer back to it: it is in no cycle, and is left out of the garbage
    // collector's passes.
    if (e.slices.empty() && PyObject_GC_IsTracked(obj.ptr())) PyObject_GC_UnTrack(obj.ptr());
    return obj;
  }

  // Every decodable entry (slice entries included) as an `cls` (a class with the slots
  // EntryClass names, such as tfckpt's frozen Entry dataclass), filled in directly:
  // {key: entry}. Entries that do not decode are left out: their key's own lookup raises
  // the error. It makes the loop every script writes, entry(k) for each key, a lookup.
  py::dict EntryObjects(const py::handle& cls, const py::handle& slices_of) const {
    const EntryClass entry_class(cls);
    py::dict out;
    for (size_t i = 0; i < bundle_->size(); ++i) {
      if (!bundle_->entry(i).error.empty()) continue;
      py::object obj = EntryObject(entry_class, i, slices_of);
      PyObject* key = *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(obj.ptr()) +
                                                     entry_class.offsets[0]);
      if (PyDict_SetItem(out.ptr(), key, obj.ptr()) != 0) throw py::error_already_set();
    }
    return out;
  }

  // The entry of `key` as a `cls`, as EntryObjects makes them.
  py::object EntryOf(const py::handle& key, const py::handle& cls,
                     const py::handle& slices_of) const {
    const EntryClass entry_class(cls);
    size_t i = Lookup(key);
    const tfckpt::Entry& e = bundle_->entry(i);
    if (!e.error.empty()) {
      throw Corrupt(bundle_->table().name() + ": entry for key " + Printable(bundle_->key(i)) +
                    ": " + e.error);
    }
    return EntryObject(entry_class, i, slices_of);
  }

  py::list Keys(bool hidden) const {
    py::list out;
    for (size_t i = 0; i < bundle_->size(); ++i) {
      if (hidden || !bundle_->hidden(i)) out.append(py::reinterpret_steal<py::object>(KeyObject(i)));
    }
    return out;
  }

  py::list RawKeys() const {
    py::list out;
    for (size_t i = 0; i < bundle_->size(); ++i) out.append(py::bytes(bundle_->key(i)));
    return out;
  }

  // One ListingRow per listed key. Built with the C API directly: listing is the hot path
  // of scans over thousands of checkpoints, and pybind11's generic casts cost several
  // times more per key.
  py::list Listing(bool hidden) const {
    py::list out;
    for (size_t i = 0; i < bundle_->size(); ++i) {
      if (!hidden && bundle_->hidden(i)) continue;
      const tfckpt::Entry& e = bundle_->entry(i);
      py::object row = NewRow(g_listing_row);
      Put(row, 0, KeyObject(i));
      Put(row, 1, PyLong_FromLong(e.dtype));
      Put(row, 2, ShapeObject(e.shape));
      Put(row, 3, PyLong_FromLongLong(e.size));
      Put(row, 4, PyLong_FromLongLong(e.num_elements));
      Put(row, 5, e.error.empty() ? py::none().release().ptr() : py::str(e.error).release().ptr());
      Put(row, 6, PyBool_FromLong(!e.slices.empty()));
      // A row of plain values (str, int, bool, None, a tuple of ints) cannot be part of a
      // reference cycle: it is taken out of the garbage collector's sight, as CPython does
      // with such tuples, or the listing of a big checkpoint would be walked again at every
      // collection.
      PyObject_GC_UnTrack(row.ptr());
      if (PyList_Append(out.ptr(), row.ptr()) != 0) throw py::error_already_set();
    }
    return out;
  }

  // Sums a scan needs without a row per key, in one pass over the decoded entries: a
  // TotalsRow (listed keys, their elements where decodable, listed keys with a bad entry,
  // listed partitioned keys, {dtype: listed keys}, bytes of every decodable unpartitioned
  // entry, slice entries included: what the data shards must hold at least).
  py::object Totals() const {
    __int128 parameters = 0, data_bytes = 0;
    size_t listed = 0, errors = 0, partitioned = 0;
    std::map<int32_t, size_t> dtypes;
    for (size_t i = 0; i < bundle_->size(); ++i) {
      const tfckpt::Entry& e = bundle_->entry(i);
      const bool ok = e.error.empty();
      if (ok && e.slices.empty()) data_bytes += e.size;
      if (bundle_->hidden(i)) continue;
      ++listed;
      ++dtypes[e.dtype];
      if (!e.slices.empty()) ++partitioned;
      if (ok) {
        parameters += e.num_elements;
      } else {
        ++errors;
      }
    }
    py::dict counts;
    for (const auto& [code, n] : dtypes) counts[py::int_(code)] = py::int_(n);
    py::object row = NewRow(g_totals_row);
    Put(row, 0, PyLong_FromSize_t(listed));
    Put(row, 1, BigInt(parameters).release().ptr());
    Put(row, 2, PyLong_FromSize_t(errors));
    Put(row, 3, PyLong_FromSize_t(partitioned));
    Put(row, 4, counts.release().ptr());
    Put(row, 5, BigInt(data_bytes).release().ptr());
    return row;
  }

  // The listing as records of a per-key scan, built natively: one `cls` (a tuple
  // subclass without instance attributes, such as a namedtuple) per listed key, holding
  // `lead`'s items, then key, dtype name, shape, num_elements, size, partitioned, status
  // ("ok" or "error") and the error or None. A dtype code is named by `names[code]`, or
  // by `name_of(code)` outside `names`.
  py::list KeyRecords(const py::handle& cls, const py::tuple& lead, const py::tuple& names,
                      const py::handle& name_of) const {
    if (!PyType_Check(cls.ptr()) ||
        !PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(cls.ptr()), &PyTuple_Type) ||
        reinterpret_cast<PyTypeObject*>(cls.ptr())->tp_basicsize != PyTuple_Type.tp_basicsize) {
      throw py::type_error("key_records: cls must be a tuple subclass without instance attributes");
    }
    PyTypeObject* type = reinterpret_cast<PyTypeObject*>(cls.ptr());
    const Py_ssize_t n_lead = PyTuple_GET_SIZE(lead.ptr());
    // A record of strings, ints, None and a tuple of ints cannot be part of a reference
    // cycle, so it is taken out of the garbage collector's sight, as CPython does with
    // such plain tuples: scans keep hundreds of thousands of records alive, and the
    // collector would otherwise walk them all again and again.
    bool atomic = true;
    for (Py_ssize_t j = 0; j < n_lead; ++j) {
      PyObject* item = PyTuple_GET_ITEM(lead.ptr(), j);
      if (!(PyUnicode_CheckExact(item) || PyLong_CheckExact(item) || item == Py_None)) {
        atomic = false;
      }
    }
    static PyObject* const ok = PyUnicode_InternFromString("ok");
    static PyObject* const error = PyUnicode_InternFromString("error");
    if (!ok || !error) throw py::error_already_set();
    py::list out;
    for (size_t i = 0; i < bundle_->size(); ++i) {
      if (bundle_->hidden(i)) continue;
      const tfckpt::Entry& e = bundle_->entry(i);
      py::object name;
      if (e.dtype >= 0 && e.dtype < PyTuple_GET_SIZE(names.ptr())) {
        name = py::reinterpret_borrow<py::object>(PyTuple_GET_ITEM(names.ptr(), e.dtype));
      } else {
        name = name_of(e.dtype);
      }
      PyObject* rec = type->tp_alloc(type, n_lead + 8);
      if (!rec) throw py::error_already_set();
      py::object keep = py::reinterpret_steal<py::object>(rec);
      for (Py_ssize_t j = 0; j < n_lead; ++j) {
        PyObject* item = PyTuple_GET_ITEM(lead.ptr(), j);
        Py_INCREF(item);
        PyTuple_SET_ITEM(rec, j, item);
      }
      PyTuple_SET_ITEM(rec, n_lead, KeyObject(i));
      PyTuple_SET_ITEM(rec, n_lead + 1, name.release().ptr());
      PyTuple_SET_ITEM(rec, n_lead + 2, ShapeObject(e.shape));
      PyTuple_SET_ITEM(rec, n_lead + 3, Checked(PyLong_FromLongLong(e.num_elements)));
      PyTuple_SET_ITEM(rec, n_lead + 4, Checked(PyLong_FromLongLong(e.size)));
      PyTuple_SET_ITEM(rec, n_lead + 5, PyBool_FromLong(!e.slices.empty()));
      PyObject* status = e.error.empty() ? ok : error;
      Py_INCREF(status);
      PyTuple_SET_ITEM(rec, n_lead + 6, status);
      if (e.error.empty()) {
        Py_INCREF(Py_None);
        PyTuple_SET_ITEM(rec, n_lead + 7, Py_None);
      } else {
        PyTuple_SET_ITEM(rec, n_lead + 7, py::str(e.error).release().ptr());
      }
      if (atomic && PyObject_GC_IsTracked(rec)) PyObject_GC_UnTrack(rec);
      if (PyList_Append(out.ptr(), rec) != 0) throw py::error_already_set();
    }
    return out;
  }

  py::bytes RawValue(const py::handle& key) const {
    std::string_view v = bundle_->raw_value(Lookup(key));
    return py::bytes(v.data(), v.size());
  }

  bool Contains(const py::handle& key) const {
    std::string storage;
    std::string_view k = KeyView(key, &storage);
    return !k.empty() && bundle_->Find(k) >= 0;
  }

  bool Hidden(const py::handle& key) const { return bundle_->hidden(Lookup(key)); }

  py::object HeaderRow() const {
    const Header& h = bundle_->header();
    py::object row = NewRow(g_header_row);
    Put(row, 0, PyLong_FromLong(h.num_shards));
    Put(row, 1, PyLong_FromLong(h.endianness));
    Put(row, 2, PyLong_FromLong(h.producer));
    Put(row, 3, PyLong_FromLong(h.min_consumer));
    Put(row, 4, py::cast(h.bad_consumers).release().ptr());
    return row;
  }

  py::dict TableStats() const {
    const auto& s = bundle_->table().stats();
    py::dict d;
    d["data_blocks"] = s.data_blocks;
    d["snappy_blocks"] = s.snappy_blocks;
    d["index_handle"] = py::make_tuple(s.index_handle.offset, s.index_handle.size);
    d["metaindex_handle"] = py::make_tuple(s.metaindex_handle.offset, s.metaindex_handle.size);
    d["file_size"] = buffer_->size();
    return d;
  }

  size_t Size() const { return bundle_->size(); }
  py::str Name() const { return PathStr(bundle_->table().name()); }

 private:
  std::unique_ptr<BufferRef> buffer_;
  std::unique_ptr<Bundle> bundle_;
  mutable std::vector<py::object> key_strs_;  // KeyObject's, made on first use
};

uint32_t Crc(const py::object& data, uint32_t crc, bool portable) {
  BufferRef buf(data);
  py::gil_scoped_release release;
  return portable ? crc32c::ExtendPortable(crc, buf.data(), buf.size())
                  : crc32c::Extend(crc, buf.data(), buf.size());
}

py::object g_errors;  // the tfckpt.errors module

void RaiseTranslated(const Error& e) {
  const char* name = "CorruptCheckpointError";
  switch (e.kind()) {
    case ErrorKind::kCorrupt: name = "CorruptCheckpointError"; break;
    case ErrorKind::kChecksum: name = "ChecksumMismatchError"; break;
    case ErrorKind::kKeyNotFound: name = "KeyNotFoundError"; break;
    case ErrorKind::kUnsupported: name = "UnsupportedCheckpointError"; break;
    case ErrorKind::kInvalidArgument: name = "InvalidArgumentError"; break;
    case ErrorKind::kIo: name = "CheckpointError"; break;
  }
  py::object cls = g_errors.attr(name);
  const std::string what = e.what();
  PyObject* text = PyUnicode_DecodeUTF8(what.data(), what.size(), "backslashreplace");
  if (!text) throw py::error_already_set();
  py::object message = py::reinterpret_steal<py::object>(text);
  py::object exc;
  if (e.kind() == ErrorKind::kChecksum && !e.key.empty()) {
    exc = cls(message, py::arg("key") = KeyStr(e.key), py::arg("stored") = e.stored,
              py::arg("computed") = e.computed);
  } else {
    exc = cls(message);
  }
  PyErr_SetObject(cls.ptr(), exc.ptr());
}

// A string or variant payload decoded without the GIL by `decode(bytes, key, &items)`:
// (list of the elements as bytes, the CRC32C TensorFlow computes over the payload).
template <typename Decode>
py::tuple DecodePayload(const py::object& data, const py::handle& key_obj, Decode decode) {
  const std::string key = KeyBytes(key_obj);
  BufferRef buf(data);
  std::vector<std::string_view> items;
  uint32_t crc;
  {
    py::gil_scoped_release release;
    crc = decode(buf.view(), key, &items);
  }
  py::list out(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    out[i] = py::bytes(items[i].data(), items[i].size());
  }
  return py::make_tuple(out, crc);
}

std::vector<int64_t> ShapeVector(const py::handle& shape) {
  std::vector<int64_t> out;
  for (const py::handle& d : shape) out.push_back(d.cast<int64_t>());
  return out;
}

std::vector<std::string_view> BytesViews(const py::list& items, std::vector<py::bytes>* keep) {
  std::vector<std::string_view> out;
  out.reserve(items.size());
  for (const py::handle& item : items) {
    if (!PyBytes_Check(item.ptr())) throw py::type_error("expected a list of bytes");
    keep->push_back(py::reinterpret_borrow<py::bytes>(item));
    out.emplace_back(PyBytes_AS_STRING(item.ptr()), PyBytes_GET_SIZE(item.ptr()));
  }
  return out;
}

// The native writer; every method that moves bytes releases the GIL.
class PyWriter {
 public:
  PyWriter(const std::string& prefix, uint64_t max_shard_bytes, bool big_endian)
      : w_(prefix, max_shard_bytes, big_endian) {}

  void Add(const py::handle& key, int32_t dtype, const py::handle& shape, const py::object& data) {
    std::string k = KeyBytes(key);
    std::vector<int64_t> dims = ShapeVector(shape);
    BufferRef buf(data);
    py::gil_scoped_release release;
    w_.Add(k, dtype, dims, buf.data(), buf.size());
  }
  void AddRaw(const py::handle& key, int32_t dtype, const py::handle& shape, const py::object& data,
              uint32_t masked_crc) {
    std::string k = KeyBytes(key);
    std::vector<int64_t> dims = ShapeVector(shape);
    BufferRef buf(data);
    py::gil_scoped_release release;
    w_.AddRaw(k, dtype, dims, buf.data(), buf.size(), masked_crc);
  }
  void AddStrings(const py::handle& key, const py::handle& shape, const py::list& items) {
    AddItems(&BundleWriter::AddStrings, key, shape, items);
  }
  void AddVariants(const py::handle& key, const py::handle& shape, const py::list& items) {
    AddItems(&BundleWriter::AddVariants, key, shape, items);
  }
  void AddSliceMeta(const py::handle& key, int32_t dtype, const py::handle& shape,
                    const py::handle& slice) {
    w_.AddSliceMeta(KeyBytes(key), dtype, ShapeVector(shape), SliceFromPython(slice));
  }
  int Finish() {
    py::gil_scoped_release release;
    return w_.Finish();
  }
  void Abort() { w_.Abort(); }
  uint64_t BytesWritten() const { return w_.bytes_written(); }

 private:
  // A tensor of byte strings (DT_STRING elements or serialized variants), added by `add`.
  template <typename Add>
  void AddItems(Add add, const py::handle& key, const py::handle& shape, const py::list& items) {
    std::string k = KeyBytes(key);
    std::vector<int64_t> dims = ShapeVector(shape);
    std::vector<py::bytes> keep;
    std::vector<std::string_view> views = BytesViews(items, &keep);
    py::gil_scoped_release release;
    (w_.*add)(k, dims, views);
  }

  BundleWriter w_;
};

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "Native core of tfckpt: the TensorBundle index table, entries, payloads, CRC32C.";
  g_errors = py::module_::import("tfckpt.errors");
  // Keep the module alive for the lifetime of the interpreter.
  g_errors.inc_ref();

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      RaiseTranslated(e);
    } catch (const FileError& e) {
      errno = e.errnum();
      PyErr_SetFromErrnoWithFilename(PyExc_OSError, e.path().c_str());
    }
  });
  for (RowType* row : {&g_header_row, &g_entry_row, &g_listing_row, &g_totals_row}) {
    AddRowType(m, row);
  }

  m.attr("crc32c_implementation") = crc32c::Implementation();
  m.def("crc32c", [](const py::object& d, uint32_t crc) { return Crc(d, crc, false); },
        py::arg("data"), py::arg("crc") = 0,
        "CRC-32C of data, extending `crc` (the CRC of preceding bytes). GIL released.");
  m.def("crc32c_portable", [](const py::object& d, uint32_t crc) { return Crc(d, crc, true); },
        py::arg("data"), py::arg("crc") = 0);
  m.def("crc32c_combine", &crc32c::Combine, py::arg("crc_a"), py::arg("crc_b"), py::arg("len_b"),
        "CRC-32C of A followed by B from the CRCs of both and B's length.");
  m.def(
      "crc32c_file",
      [](int fd, uint64_t offset, uint64_t size, int threads) {
        uint64_t got = 0;
        int error = 0;
        uint32_t crc;
        {
          py::gil_scoped_release release;
          crc = crc32c::FileRange(fd, offset, size, threads, &got, &error);
        }
        if (error != 0) {
          errno = error;
          PyErr_SetFromErrno(PyExc_OSError);
          throw py::error_already_set();
        }
        return py::make_tuple(crc, got);
      },
      py::arg("fd"), py::arg("offset"), py::arg("size"), py::arg("threads") = 1,
      "(CRC-32C of bytes [offset, offset+size) of fd read with pread, bytes read: fewer when "
      "the file ends first). GIL released; large ranges split between `threads` threads.");
  m.def("mask_crc", &crc32c::Mask);
  m.def("unmask_crc", &crc32c::Unmask);

  m.def("snappy_decompress", [](const py::object& data, size_t max_output) {
    BufferRef buf(data);
    std::string out, error;
    bool ok;
    {
      py::gil_scoped_release release;
      ok = snappy::Decompress(buf.data(), buf.size(), max_output, &out, &error);
    }
    if (!ok) throw Corrupt("corrupted compressed block contents (" + error + ")");
    return py::bytes(out);
  }, py::arg("data"), py::arg("max_output"));

  py::list sizes;
  for (int dt = 0; dt < 34; ++dt) sizes.append(DtypeSize(dt));
  m.attr("dtype_sizes") = sizes;

  m.def("tensor_stats", [](const py::object& data, int32_t dtype, bool swap) {
    BufferRef buf(data);
    Stats s;
    {
      py::gil_scoped_release release;
      AccumulateStats(dtype, buf.data(), buf.size(), swap, &s);
    }
    return py::make_tuple(s.count, s.nan, s.posinf, s.neginf, s.zeros, s.min, s.max, s.mean,
                          s.m2);
  }, py::arg("data"), py::arg("dtype"), py::arg("swap") = false,
        "(count, nan, posinf, neginf, zeros, min, max, mean, m2) of a payload of DataType "
        "`dtype`; min..m2 over the finite values (m2: summed squared deviations). GIL released.");

  m.def("slice_key", [](const py::handle& name, const py::handle& slice) {
    return py::bytes(EncodeTensorNameSlice(KeyBytes(name), SliceFromPython(slice)));
  }, py::arg("name"), py::arg("slice"),
        "The index key of one slice of a partitioned tensor (OrderedCode).");
  m.def("decode_slice_key", [](const py::bytes& key) -> py::object {
    std::string name;
    Slice slice;
    if (!DecodeTensorNameSlice(std::string(key), &name, &slice)) return py::none();
    py::list extents;
    for (const Extent& e : slice) extents.append(py::make_tuple(e.start, e.length));
    return py::make_tuple(py::bytes(name), extents);
  }, py::arg("key"));

  m.def("decode_strings", [](const py::object& data, uint64_t n, bool swap, bool verify,
                             const py::handle& key_obj) {
    return DecodePayload(data, key_obj, [&](std::string_view bytes, const std::string& key,
                                            std::vector<std::string_view>* items) {
      return DecodeStrings(bytes, n, swap, verify, key, items);
    });
  }, py::arg("data"), py::arg("n"), py::arg("swap"), py::arg("verify"), py::arg("key"));

  m.def("decode_variants", [](const py::object& data, uint64_t n, bool verify,
                              const py::handle& key_obj) {
    return DecodePayload(data, key_obj, [&](std::string_view bytes, const std::string& key,
                                            std::vector<std::string_view>* items) {
      return DecodeVariants(bytes, n, verify, key, items);
    });
  }, py::arg("data"), py::arg("n"), py::arg("verify"), py::arg("key"));

  m.def("read_table", [](const py::object& buffer, const py::handle& name_obj) {
    const std::string name = PathBytes(name_obj);
    BufferRef buf(buffer);
    std::unique_ptr<Table> table;
    {
      py::gil_scoped_release release;
      table = std::make_unique<Table>(buf.data(), buf.size(), name);
    }
    py::list out;
    for (const TableEntry& e : table->entries()) {
      out.append(py::make_tuple(py::bytes(e.key.data(), e.key.size()), py::bytes(e.value.data(), e.value.size())));
    }
    return out;
  }, py::arg("buffer"), py::arg("name"),
        "Every (key, value) of a LevelDB-style table, every block CRC checked (format V1 files "
        "are such a table).");

  m.def("build_table", [](const py::iterable& items, size_t block_size, int restart_interval) {
    std::vector<std::pair<std::string, std::string>> kvs;
    for (const py::handle& item : items) {
      auto kv = item.cast<std::pair<py::bytes, py::bytes>>();
      kvs.emplace_back(std::string(kv.first), std::string(kv.second));
    }
    std::string out;
    {
      py::gil_scoped_release release;
      TableBuilder builder(block_size, restart_interval);
      for (auto& kv : kvs) builder.Add(kv.first, kv.second);
      out = builder.Finish();
    }
    return py::bytes(out);
  }, py::arg("items"), py::arg("block_size") = 262144, py::arg("restart_interval") = 16,
        "Builds table bytes from (key, value) pairs given in strictly increasing key order.");

  m.def(
      "read_small_file",
      [](const py::handle& path, size_t limit) -> py::object {
        std::string name, data;
        try {
          name = PathBytes(path);
        } catch (const py::error_already_set&) {
          return py::none();  // (the caller's general path says what is wrong)
        }
        bool ok;
        {
          py::gil_scoped_release release;
          ok = ReadSmallRegular(name, limit, &data);
        }
        if (!ok) return py::none();
        return py::bytes(data);
      },
      py::arg("path"), py::arg("limit"),
      "The bytes of regular file `path` if it holds at most `limit` bytes and reads whole; "
      "None otherwise, errors included (the caller's general path then says what is "
      "wrong). GIL released.");
  m.def(
      "file_identity",
      [](const py::handle& path) -> py::object {
        std::string name;
        try {
          name = PathBytes(path);
        } catch (const py::error_already_set&) {
          return py::none();
        }
        FileIdentity id;
        bool ok;
        {
          py::gil_scoped_release release;
          ok = StatRegular(name, &id);
        }
        if (!ok) return py::none();
        return py::make_tuple(static_cast<uint64_t>(id.dev), static_cast<uint64_t>(id.ino),
                              id.size, id.mtime_ns);
      },
      py::arg("path"),
      "(device, inode, size, mtime in ns) of the regular file at `path` (symbolic links "
      "followed), as MappedFile.identity; None when it cannot be stat'ed or is not a "
      "regular file. GIL released.");

  py::class_<MappedFile>(m, "MappedFile", py::buffer_protocol())
      .def(py::init([](const py::handle& path, bool track_size) {
             return std::make_unique<MappedFile>(PathBytes(path), track_size);
           }), py::arg("path"), py::arg("track_size") = false)
      .def_property_readonly("size", &MappedFile::size)
      .def_property_readonly("path", [](const MappedFile& f) { return PathStr(f.path()); })
      .def("current_size", &MappedFile::CurrentSize)
      .def_property_readonly("identity", [](const MappedFile& f) {
        return py::make_tuple(static_cast<uint64_t>(f.dev()), static_cast<uint64_t>(f.ino()),
                              f.opened_size(), f.mtime_ns());
      })
      .def("__len__", &MappedFile::size)
      .def("will_need", &MappedFile::WillNeed, py::arg("offset"), py::arg("length"))
      .def_buffer([](MappedFile& f) {
        return py::buffer_info(const_cast<uint8_t*>(f.data()), 1,
                               py::format_descriptor<uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(f.size())}, {1}, /*readonly=*/true);
      });

  m.def("tar_members", [](const py::object& buffer) -> py::object {
    BufferRef buf(buffer);
    TarListing listing;
    bool ok;
    {
      py::gil_scoped_release release;
      ok = ListTar(buf.data(), buf.size(), &listing);
    }
    if (!ok) return py::none();
    py::dict files, errors;
    for (const auto& [name, member] : listing.files) {
      files[KeyStr(name)] = py::make_tuple(member.offset, member.size);
    }
    for (const auto& [name, message] : listing.errors) errors[KeyStr(name)] = KeyStr(message);
    return py::make_tuple(files, errors,
                          listing.problem.empty() ? py::object(py::none())
                                                  : py::object(py::str(listing.problem)));
  }, py::arg("buffer"));

  m.def("serialize_entry", [](int32_t dtype, const py::handle& shape, int32_t shard_id,
                              int64_t offset, int64_t size, uint32_t crc, const py::list& slices) {
    std::vector<Slice> sl;
    for (const py::handle& s : slices) sl.push_back(SliceFromPython(s));
    return py::bytes(SerializeEntry(dtype, ShapeVector(shape), shard_id, offset, size, crc, sl));
  }, py::arg("dtype"), py::arg("shape"), py::arg("shard_id"), py::arg("offset"), py::arg("size"),
        py::arg("crc32c"), py::arg("slices"),
        "A BundleEntryProto serialized byte for byte as TensorFlow does.");

  py::class_<PyWriter>(m, "BundleWriter")
      .def(py::init([](const py::handle& prefix, uint64_t max_shard_bytes, bool big_endian) {
             return std::make_unique<PyWriter>(PathBytes(prefix), max_shard_bytes, big_endian);
           }), py::arg("prefix"),
           py::arg("max_shard_bytes") = 0, py::arg("big_endian") = false)
      .def("add", &PyWriter::Add, py::arg("key"), py::arg("dtype"), py::arg("shape"), py::arg("data"))
      .def("add_raw", &PyWriter::AddRaw, py::arg("key"), py::arg("dtype"), py::arg("shape"),
           py::arg("data"), py::arg("crc32c"))
      .def("add_strings", &PyWriter::AddStrings, py::arg("key"), py::arg("shape"), py::arg("items"))
      .def("add_variants", &PyWriter::AddVariants, py::arg("key"), py::arg("shape"), py::arg("items"))
      .def("add_slice_meta", &PyWriter::AddSliceMeta, py::arg("key"), py::arg("dtype"),
           py::arg("shape"), py::arg("slice"))
      .def("finish", &PyWriter::Finish)
      .def("abort", &PyWriter::Abort)
      .def_property_readonly("bytes_written", &PyWriter::BytesWritten);

  py::class_<PyIndex>(m, "Index")
      .def(py::init([](const py::object& buffer, const py::handle& name) {
             return std::make_unique<PyIndex>(buffer, PathBytes(name));
           }), py::arg("buffer"), py::arg("name"))
      .def_property_readonly("header", &PyIndex::HeaderRow)
      .def_property_readonly("table_stats", &PyIndex::TableStats)
      .def_property_readonly("name", &PyIndex::Name)
      .def("__len__", &PyIndex::Size)
      .def("__contains__", &PyIndex::Contains)
      .def("keys", &PyIndex::Keys, py::arg("hidden") = false)
      .def("raw_keys", &PyIndex::RawKeys)
      .def("listing", &PyIndex::Listing, py::arg("hidden") = false)
      .def("totals", &PyIndex::Totals)
      .def("key_records", &PyIndex::KeyRecords, py::arg("cls"), py::arg("lead"),
           py::arg("names"), py::arg("name_of"))
      .def("entry", &PyIndex::Entry, py::arg("key"))
      .def("entry_objects", &PyIndex::EntryObjects, py::arg("cls"), py::arg("slices_of"))
      .def("entry_object", &PyIndex::EntryOf, py::arg("key"), py::arg("cls"), py::arg("slices_of"))
      .def("raw_value", &PyIndex::RawValue, py::arg("key"))
      .def("is_hidden", &PyIndex::Hidden, py::arg("key"));
}
