// A thin node-addon-api layer over libbpf (and a little of the kernel's
// interface API). It checks argument types only: TypeScript validates values.
// Its whole surface is declared once in src/dataplane/native.ts.
//
// Threads: everything runs on the JS thread except the bodies of the async
// workers (object load, XDP attach, repeated test runs), which touch only the
// C objects they were handed. libbpf's print callback is process-wide and may
// fire on a worker thread: messages go into a mutex-protected queue that the
// JS thread drains into the registered logger.
#include <napi.h>
#include <algorithm>
#include <uv.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "netlink.h"

extern "C" {
#include "../bpf/xdplb_abi.h"
}

namespace {

// ---- errors ---------------------------------------------------------------

// A Node-style system error: message "syscall: strerror (detail)", code
// "EINVAL", errno -22, syscall.
Napi::Error SystemError(Napi::Env env, int err, const std::string &syscall,
                        const std::string &detail = "") {
  if (err > 0) err = -err;
  if (err == 0) err = -EIO;
  std::string msg = syscall + ": " + strerror(-err);
  if (!detail.empty()) msg += " (" + detail + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, uv_err_name(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

// ---- libbpf log -----------------------------------------------------------

std::mutex log_mutex;
std::vector<std::pair<int, std::string>> log_queue;

int LibbpfPrint(enum libbpf_print_level level, const char *fmt, va_list args) {
  char buf[16384];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  if (n < 0) return n;
  std::lock_guard<std::mutex> lock(log_mutex);
  log_queue.emplace_back(static_cast<int>(level), std::string(buf));
  return n;
}

// ---- owned kernel objects ---------------------------------------------------

struct LoadedObject {
  bpf_object *obj = nullptr;
  ~LoadedObject() {
    if (obj) bpf_object__close(obj);
  }
};

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// What an export or a method is called in error messages ("map.update") and
// how many arguments it needs; its JS function's data.
struct Signature {
  std::string name;
  size_t required;
};

// Per-environment state (worker threads each get their own).
struct Instance {
  Napi::FunctionReference map_ctor, prog_ctor, link_ctor, object_ctor;
  Napi::FunctionReference logger;
  std::deque<Signature> signatures;  // a deque: their addresses are stable
};

Instance &State(Napi::Env env) { return *env.GetInstanceData<Instance>(); }

void *Sign(Napi::Env env, std::string name, size_t required) {
  return &State(env).signatures.emplace_back(Signature{std::move(name), required});
}

// ---- argument checks ----------------------------------------------------------
//
// Every entry point checks the type of each argument before converting it,
// and throws a TypeError naming the callee and the argument
// ("map.update: value must be a Buffer or a Map, got a Link"). Values are
// the TypeScript side's business, except sizes the addon must trust.

// The type tags of the classes JS holds instances of (napi_type_tag_object):
// an object is unwrapped as a Map only if it carries the Map tag, so a Link
// passed for a Map throws instead of being reinterpreted.
constexpr napi_type_tag kMapTag = {0x757879b5628838beULL, 0x73db40655a529e42ULL};
constexpr napi_type_tag kLinkTag = {0xcf3c832251871d36ULL, 0x5445f3d73c9f4fd4ULL};
constexpr napi_type_tag kProgramTag = {0xba6d8a5ad65070d7ULL, 0x28e091e24c2e5c26ULL};
constexpr napi_type_tag kObjectTag = {0x582069382ab96d30ULL, 0x9164f5acecebd4f9ULL};

std::string Callee(const Napi::CallbackInfo &info) {
  auto *sig = static_cast<const Signature *>(info.Data());
  return sig ? sig->name : "xdplb";
}

// "a string", "undefined", "a Link": what a value is, for messages.
std::string Describe(const Napi::Value &v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "a boolean";
    case napi_number: return "a number";
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_bigint: return "a bigint";
    case napi_function: return "a function";
    case napi_external: return "an external";
    case napi_object: break;
  }
  if (v.IsBuffer()) return "a Buffer";
  if (v.IsArray()) return "an array";
  static constexpr std::pair<const napi_type_tag *, const char *> tagged[] = {
      {&kMapTag, "a Map"}, {&kLinkTag, "a Link"}, {&kProgramTag, "a Program"}, {&kObjectTag, "a BpfObject"}};
  for (auto &t : tagged)
    if (v.As<Napi::Object>().CheckTypeTag(t.first)) return t.second;
  return "an object";
}

[[noreturn]] void ThrowTypeError(const Napi::CallbackInfo &info, const std::string &what,
                                 const char *expected, const Napi::Value &got) {
  throw Napi::TypeError::New(info.Env(),
                             Callee(info) + ": " + what + " must be " + expected + ", got " + Describe(got));
}

void CheckArgCount(const Napi::CallbackInfo &info) {
  auto *sig = static_cast<const Signature *>(info.Data());
  if (!sig || info.Length() >= sig->required) return;
  throw Napi::TypeError::New(info.Env(), sig->name + ": needs " + std::to_string(sig->required) +
                                             (sig->required == 1 ? " argument" : " arguments") + ", got " +
                                             std::to_string(info.Length()));
}

// Absent: undefined (an optional argument or property not given).
bool Given(const Napi::Value &v) { return !v.IsUndefined(); }

std::string StringArg(const Napi::CallbackInfo &info, const Napi::Value &v, const std::string &what) {
  if (!v.IsString()) ThrowTypeError(info, what, "a string", v);
  return v.As<Napi::String>();
}

Napi::Number NumberArg(const Napi::CallbackInfo &info, const Napi::Value &v, const std::string &what) {
  if (!v.IsNumber()) ThrowTypeError(info, what, "a number", v);
  return v.As<Napi::Number>();
}

// A plain object (options), not a Buffer, array or function.
Napi::Object ObjectArg(const Napi::CallbackInfo &info, const Napi::Value &v, const std::string &what) {
  if (v.Type() != napi_object || v.IsBuffer() || v.IsArray()) ThrowTypeError(info, what, "an object", v);
  return v.As<Napi::Object>();
}

// A Buffer (or Uint8Array); with `size`, of exactly that many bytes.
constexpr size_t kAnySize = SIZE_MAX;
Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo &info, const Napi::Value &v, const std::string &what,
                                size_t size = kAnySize) {
  if (!v.IsBuffer()) ThrowTypeError(info, what, "a Buffer", v);
  auto b = v.As<Napi::Buffer<uint8_t>>();
  if (size != kAnySize && b.Length() != size)
    throw Napi::RangeError::New(info.Env(), Callee(info) + ": " + what + " must be " + std::to_string(size) +
                                                " bytes, got " + std::to_string(b.Length()));
  return b;
}

// An instance of one of the wrapped classes below, by its type tag.
template <typename T>
bool Is(const Napi::Value &v) {
  return v.IsObject() && v.As<Napi::Object>().CheckTypeTag(&T::kTag);
}

template <typename T>
T *UnwrapArg(const Napi::CallbackInfo &info, const Napi::Value &v, const std::string &what) {
  if (!Is<T>(v)) ThrowTypeError(info, what, T::kWhat, v);
  return T::Unwrap(v.As<Napi::Object>());
}

// Base of the wrapped classes. An instance carries its class's type tag, and
// every method is defined through Method<>(), which checks `this` by that tag
// and the argument count before it unwraps: Map.prototype.lookup.call(link)
// throws a TypeError instead of reading a Link as a Map.
template <typename T>
class Wrapped : public Napi::ObjectWrap<T> {
 public:
  explicit Wrapped(const Napi::CallbackInfo &info) : Napi::ObjectWrap<T>(info) {
    info.This().As<Napi::Object>().TypeTag(&T::kTag);
  }

 protected:
  using Callback = Napi::Value (T::*)(const Napi::CallbackInfo &);
  // The method `name`, needing `required` arguments.
  template <Callback M>
  static Napi::PropertyDescriptor Method(Napi::Env env, const char *name, size_t required) {
    void *sig = Sign(env, std::string(T::kPrefix) + "." + name, required);
    return Napi::PropertyDescriptor::Value(name, Napi::Function::New<Call<M>>(env, name, sig),
                                           napi_default_method);
  }
  // The class, with its methods set on its prototype afterwards (a class
  // template holds only primitives and templates, not our functions).
  static Napi::Function Define(Napi::Env env, const char *name,
                               const std::initializer_list<Napi::PropertyDescriptor> &methods) {
    Napi::Function ctor = Napi::ObjectWrap<T>::DefineClass(env, name, {});
    ctor.Get("prototype").template As<Napi::Object>().DefineProperties(methods);
    return ctor;
  }

 private:
  template <Callback M>
  static Napi::Value Call(const Napi::CallbackInfo &info) {
    T *self = UnwrapArg<T>(info, info.This(), "this");
    CheckArgCount(info);
    return (self->*M)(info);
  }
};

// Delivers queued libbpf messages to the JS logger (JS thread only).
void DrainLog(Napi::Env env) {
  std::vector<std::pair<int, std::string>> batch;
  {
    std::lock_guard<std::mutex> lock(log_mutex);
    batch.swap(log_queue);
  }
  Instance &st = State(env);
  if (st.logger.IsEmpty()) return;
  static const char *levels[] = {"warn", "info", "debug"};  // LIBBPF_WARN..DEBUG
  for (auto &m : batch) {
    std::string text = m.second;
    while (!text.empty() && text.back() == '\n') text.pop_back();
    st.logger.Call({Napi::String::New(env, levels[m.first < 3 ? m.first : 2]),
                    Napi::String::New(env, text)});
  }
}

Napi::Buffer<uint8_t> Copy(Napi::Env env, const void *p, size_t n) {
  return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t *>(p), n);
}

int PossibleCpus() {
  static int n = libbpf_num_possible_cpus();
  return n;
}

// ---- async helper -----------------------------------------------------------

// Runs work() on the libuv pool and resolves with done() on the JS thread, or
// rejects with a system error named after `syscall` when work() returns < 0.
class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, std::string syscall, std::function<int()> work,
      std::function<Napi::Value(Napi::Env)> done)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        syscall_(std::move(syscall)),
        work_(std::move(work)),
        done_(std::move(done)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { result_ = work_(); }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    DrainLog(env);
    if (result_ < 0) {
      deferred_.Reject(SystemError(env, result_, syscall_, detail ? detail() : "").Value());
      return;
    }
    try {
      deferred_.Resolve(done_(env));
    } catch (const Napi::Error &e) {
      deferred_.Reject(e.Value());
    }
  }
  std::function<std::string()> detail;  // read on the JS thread after work()

 private:
  Napi::Promise::Deferred deferred_;
  std::string syscall_;
  std::function<int()> work_;
  std::function<Napi::Value(Napi::Env)> done_;
  int result_ = 0;
};

// ---- Map ------------------------------------------------------------------

class Map : public Wrapped<Map> {
 public:
  static constexpr const napi_type_tag &kTag = kMapTag;
  static constexpr const char *kWhat = "a Map", *kPrefix = "map";
  static Napi::Function Init(Napi::Env env) {
    return Define(env, "Map",
                  {
                      Method<&Map::Lookup>(env, "lookup", 1),
                      Method<&Map::LookupPerCpu>(env, "lookupPerCpu", 1),
                      Method<&Map::Update>(env, "update", 2),
                      Method<&Map::Delete>(env, "delete", 1),
                      Method<&Map::UpdateBatch>(env, "updateBatch", 3),
                      Method<&Map::NextKeys>(env, "nextKeys", 2),
                      Method<&Map::SumPerCpu>(env, "sumPerCpu", 1),
                      Method<&Map::LookupAll>(env, "lookupAll", 1),
                      Method<&Map::CountEntries>(env, "countEntries", 0),
                      Method<&Map::Entries>(env, "entries", 1),
                      Method<&Map::Pin>(env, "pin", 1),
                      Method<&Map::Info>(env, "info", 0),
                      Method<&Map::Close>(env, "close", 0),
                  });
  }
  // Wraps an fd; `owner` keeps the BPF object alive while this map lives.
  static Napi::Object New(Napi::Env env, int fd, std::shared_ptr<LoadedObject> owner,
                          bool owns_fd) {
    Napi::Object o = State(env).map_ctor.New({});
    Map *m = Unwrap(o);
    m->fd_ = fd;
    m->owns_fd_ = owns_fd;
    m->owner_ = std::move(owner);
    bpf_map_info info = {};
    uint32_t len = sizeof(info);
    int err = bpf_obj_get_info_by_fd(fd, &info, &len);
    if (err) throw SystemError(env, errno, "bpf_obj_get_info_by_fd");
    m->info_ = info;
    return o;
  }
  explicit Map(const Napi::CallbackInfo &info) : Wrapped<Map>(info) {}
  ~Map() override { Release(); }
  int Fd(Napi::Env env) {
    if (fd_ < 0) throw SystemError(env, EBADF, "bpf_map", "map is closed");
    return fd_;
  }
  const bpf_map_info &MapInfo() const { return info_; }

 private:
  void Release() {
    if (owns_fd_ && fd_ >= 0) close(fd_);
    fd_ = -1;
    owner_.reset();
  }
  bool PerCpu() const {
    switch (info_.type) {
      case BPF_MAP_TYPE_PERCPU_ARRAY:
      case BPF_MAP_TYPE_PERCPU_HASH:
      case BPF_MAP_TYPE_LRU_PERCPU_HASH:
        return true;
      default:
        return false;
    }
  }
  // Buffer size of one value as the kernel copies it out.
  size_t ValueBytes() const {
      return PerCpu() ? size_t(PossibleCpus()) * ((info_.value_size + 7) & ~7u)
                    : size_t(info_.value_size);
  }
  Napi::Value Lookup(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    auto key = BufferArg(info, info[0], "key", info_.key_size);
    std::vector<uint8_t> value(ValueBytes());
    if (bpf_map_lookup_elem(Fd(env), key.Data(), value.data())) {
      if (errno == ENOENT) return env.Null();
      throw SystemError(env, errno, "bpf_map_lookup_elem");
    }
    return Copy(env, value.data(), value.size());
  }
  // Per-CPU value: an array with one Buffer per possible CPU.
  Napi::Value LookupPerCpu(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!PerCpu()) throw Napi::TypeError::New(env, Callee(info) + ": not a per-CPU map");
    auto key = BufferArg(info, info[0], "key", info_.key_size);
    size_t stride = (info_.value_size + 7) & ~7u;
    std::vector<uint8_t> value(ValueBytes());
    if (bpf_map_lookup_elem(Fd(env), key.Data(), value.data())) {
      if (errno == ENOENT) return env.Null();
      throw SystemError(env, errno, "bpf_map_lookup_elem");
    }
    Napi::Array out = Napi::Array::New(env, PossibleCpus());
    for (int c = 0; c < PossibleCpus(); c++)
      out[c] = Copy(env, value.data() + c * stride, info_.value_size);
    return out;
  }
  Napi::Value Update(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    auto key = BufferArg(info, info[0], "key", info_.key_size);
    // A map-in-map takes an inner map's fd: pass the Map object.
    uint32_t inner_fd;
    const void *value;
    if (Is<Map>(info[1])) {
      if (info_.type != BPF_MAP_TYPE_ARRAY_OF_MAPS && info_.type != BPF_MAP_TYPE_HASH_OF_MAPS)
        ThrowTypeError(info, "value", "a Buffer (not a map-in-map)", info[1]);
      inner_fd = UnwrapArg<Map>(info, info[1], "value")->Fd(env);
      value = &inner_fd;
    } else if (info[1].IsBuffer()) {
      value = BufferArg(info, info[1], "value", ValueBytes()).Data();
    } else {
      ThrowTypeError(info, "value", "a Buffer or a Map", info[1]);
    }
    uint64_t flags = Given(info[2]) ? NumberArg(info, info[2], "flags").Int64Value() : uint64_t(BPF_ANY);
    if (bpf_map_update_elem(Fd(env), key.Data(), value, flags))
      throw SystemError(env, errno, "bpf_map_update_elem");
    return env.Undefined();
  }
  Napi::Value Delete(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    auto key = BufferArg(info, info[0], "key", info_.key_size);
    if (bpf_map_delete_elem(Fd(env), key.Data())) {
      if (errno == ENOENT) return Napi::Boolean::New(env, false);
      throw SystemError(env, errno, "bpf_map_delete_elem");
    }
    return Napi::Boolean::New(env, true);
  }
  // updateBatch(keys, values, count): count keys and values back to back.
  Napi::Value UpdateBatch(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    BufferArg(info, info[0], "keys");  // types first, then sizes
    BufferArg(info, info[1], "values");
    uint32_t count = NumberArg(info, info[2], "count").Uint32Value();
    auto keys = BufferArg(info, info[0], "keys", size_t(count) * info_.key_size);
    auto values = BufferArg(info, info[1], "values", size_t(count) * ValueBytes());
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    uint32_t n = count;
    if (count && bpf_map_update_batch(Fd(env), keys.Data(), values.Data(), &n, &opts))
      throw SystemError(env, errno, "bpf_map_update_batch",
                        std::to_string(n) + " of " + std::to_string(count) + " written");
    return Napi::Number::New(env, n);
  }
  // nextKeys(after|null, max): up to max keys following `after`.
  Napi::Value NextKeys(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    bool have = !info[0].IsNull();
    if (have && !info[0].IsBuffer()) ThrowTypeError(info, "after", "a Buffer or null", info[0]);
    uint32_t max = NumberArg(info, info[1], "max").Uint32Value();
    std::vector<uint8_t> cur(info_.key_size), next(info_.key_size);
    if (have) {
      auto k = BufferArg(info, info[0], "after", info_.key_size);
      memcpy(cur.data(), k.Data(), info_.key_size);
    }
    Napi::Array out = Napi::Array::New(env);
    for (uint32_t i = 0; i < max; i++) {
      if (bpf_map_get_next_key(Fd(env), have ? cur.data() : nullptr, next.data())) {
        if (errno == ENOENT) break;
        throw SystemError(env, errno, "bpf_map_get_next_key");
      }
      out[i] = Copy(env, next.data(), next.size());
      cur.swap(next);
      have = true;
    }
    return out;
  }
  // The count of entries to read: no more than max_entries (it sizes the
  // result, checked before anything is allocated).
  uint32_t CountArg(const Napi::CallbackInfo &info) {
    uint32_t count = NumberArg(info, info[0], "count").Uint32Value();
    if (count > info_.max_entries)
      throw Napi::RangeError::New(info.Env(), Callee(info) + ": count " + std::to_string(count) +
                                                  " exceeds max_entries " + std::to_string(info_.max_entries));
    return count;
  }
  // Reads entries 0..count-1 of an array map in batches (a few syscalls, not
  // count), calling each(key, value) with the value as the kernel copies it.
  template <typename Each>
  void ReadArrayBatched(Napi::Env env, uint32_t count, Each each) {
    const size_t vbytes = ValueBytes();
    const uint32_t chunk = 1024;
    std::vector<uint32_t> keys(chunk);
    std::vector<uint8_t> values(chunk * vbytes);
    uint32_t in_batch = 0, out_batch = 0, done = 0;
    bool first = true;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    while (done < count) {
      uint32_t n = std::min(chunk, count - done);
      int err = bpf_map_lookup_batch(Fd(env), first ? nullptr : &in_batch, &out_batch, keys.data(),
                                     values.data(), &n, &opts);
      if (err && errno != ENOENT) throw SystemError(env, errno, "bpf_map_lookup_batch");
      for (uint32_t i = 0; i < n; i++)
        if (keys[i] < count) each(keys[i], values.data() + i * vbytes);
      done += n;
      if (err || n == 0) break;  // ENOENT: the end of the map
      in_batch = out_batch;
      first = false;
    }
  }
  // sumPerCpu(count): the first `count` entries of a per-CPU array of u64
  // words, each word summed over the CPUs: a BigUint64Array of count * words.
  Napi::Value SumPerCpu(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info_.type != BPF_MAP_TYPE_PERCPU_ARRAY || info_.value_size % 8)
      throw Napi::TypeError::New(env, Callee(info) + ": needs a per-CPU array of u64 words");
    uint32_t count = CountArg(info);
    const size_t words = info_.value_size / 8, cpus = PossibleCpus();
    auto out = Napi::BigUint64Array::New(env, size_t(count) * words);
    uint64_t *sum = out.Data();
    std::fill(sum, sum + size_t(count) * words, 0);
    ReadArrayBatched(env, count, [&](uint32_t key, const uint8_t *value) {
      uint64_t *dst = sum + size_t(key) * words;
      for (size_t c = 0; c < cpus; c++)
        for (size_t w = 0; w < words; w++) {
          uint64_t v;
          memcpy(&v, value + (c * words + w) * 8, 8);
          dst[w] += v;
        }
    });
    return out;
  }
  // lookupAll(count): the values of entries 0..count-1 of an array map, back
  // to back in one Buffer.
  Napi::Value LookupAll(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info_.type != BPF_MAP_TYPE_ARRAY)
      throw Napi::TypeError::New(env, Callee(info) + ": needs an array map (not per-CPU)");
    uint32_t count = CountArg(info);
    const size_t vsize = info_.value_size;
    auto out = Napi::Buffer<uint8_t>::New(env, size_t(count) * vsize);
    memset(out.Data(), 0, out.Length());
    ReadArrayBatched(env, count, [&](uint32_t key, const uint8_t *value) {
      memcpy(out.Data() + size_t(key) * vsize, value, vsize);
    });
    return out;
  }
  // countEntries(): how many entries a hash map holds now, read in batches.
  Napi::Value CountEntries(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    const uint32_t chunk = 4096;
    std::vector<uint8_t> keys(size_t(chunk) * info_.key_size), values(size_t(chunk) * ValueBytes());
    std::vector<uint8_t> in_batch(std::max<uint32_t>(info_.key_size, 8)), out_batch(in_batch.size());
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    double total = 0;
    bool first = true;
    for (;;) {
      uint32_t n = chunk;
      int err = bpf_map_lookup_batch(Fd(env), first ? nullptr : in_batch.data(), out_batch.data(),
                                     keys.data(), values.data(), &n, &opts);
      if (err && errno != ENOENT) throw SystemError(env, errno, "bpf_map_lookup_batch");
      total += n;
      if (err) break;
      in_batch.swap(out_batch);
      first = false;
    }
    return Napi::Number::New(env, total);
  }
  // entries(count): up to count entries of a hash map as it is now, read in
  // batches: { keys, values, count } with the keys and the values back to
  // back. (A map that changes meanwhile may show an entry twice or not at all.)
  Napi::Value Entries(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    const uint32_t max = CountArg(info);
    const size_t ksize = info_.key_size, vbytes = ValueBytes();
    std::vector<uint8_t> keys(size_t(max) * ksize), values(size_t(max) * vbytes);
    std::vector<uint8_t> in_batch(std::max<uint32_t>(info_.key_size, 8)), out_batch(in_batch.size());
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    uint32_t done = 0;
    bool first = true;
    while (done < max) {
      uint32_t n = std::min<uint32_t>(4096, max - done);
      int err = bpf_map_lookup_batch(Fd(env), first ? nullptr : in_batch.data(), out_batch.data(),
                                     keys.data() + size_t(done) * ksize, values.data() + size_t(done) * vbytes,
                                     &n, &opts);
      if (err && errno != ENOENT) throw SystemError(env, errno, "bpf_map_lookup_batch");
      done += n;
      if (err) break;
      in_batch.swap(out_batch);
      first = false;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), size_t(done) * ksize));
    o.Set("values", Napi::Buffer<uint8_t>::Copy(env, values.data(), size_t(done) * vbytes));
    o.Set("count", Napi::Number::New(env, done));
    return o;
  }
  Napi::Value Pin(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    std::string path = StringArg(info, info[0], "path");
    if (bpf_obj_pin(Fd(env), path.c_str())) throw SystemError(env, errno, "bpf_obj_pin", path);
    return env.Undefined();
  }
  Napi::Value Info(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", info_.id);
    o.Set("type", info_.type);
    o.Set("name", info_.name);
    o.Set("keySize", info_.key_size);
    o.Set("valueSize", info_.value_size);
    o.Set("maxEntries", info_.max_entries);
    o.Set("flags", info_.map_flags);
    o.Set("fd", fd_);
    return o;
  }
  Napi::Value Close(const Napi::CallbackInfo &info) {
    Release();
    return info.Env().Undefined();
  }

  int fd_ = -1;
  bool owns_fd_ = false;
  std::shared_ptr<LoadedObject> owner_;
  bpf_map_info info_ = {};
};

// ---- Link -------------------------------------------------------------------

class Link : public Wrapped<Link> {
 public:
  static constexpr const napi_type_tag &kTag = kLinkTag;
  static constexpr const char *kWhat = "a Link", *kPrefix = "link";
  static Napi::Function Init(Napi::Env env) {
    return Define(env, "Link",
                  {
                      Method<&Link::Pin>(env, "pin", 1),
                      Method<&Link::Update>(env, "update", 1),
                      Method<&Link::Detach>(env, "detach", 0),
                      Method<&Link::Info>(env, "info", 0),
                      Method<&Link::Close>(env, "close", 0),
                  });
  }
  static Napi::Object New(Napi::Env env, int fd) {
    Napi::Object o = State(env).link_ctor.New({});
    Unwrap(o)->fd_ = std::make_shared<::Fd>(fd);
    return o;
  }
  explicit Link(const Napi::CallbackInfo &info) : Wrapped<Link>(info) {}

 private:
  int Get(Napi::Env env) {
    if (!fd_) throw SystemError(env, EBADF, "bpf_link", "link is closed");
    return fd_->fd;
  }
  Napi::Value Pin(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    std::string path = StringArg(info, info[0], "path");
    if (bpf_obj_pin(Get(env), path.c_str())) throw SystemError(env, errno, "bpf_obj_pin", path);
    return env.Undefined();
  }
  // update(program): atomically replaces the attached program.
  Napi::Value Update(const Napi::CallbackInfo &info);
  Napi::Value Detach(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (bpf_link_detach(Get(env))) throw SystemError(env, errno, "bpf_link_detach");
    return env.Undefined();
  }
  // { id, progId, ifindex }: ifindex 0 means the interface is gone (defunct).
  Napi::Value Info(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    bpf_link_info li = {};
    uint32_t len = sizeof(li);
    if (bpf_obj_get_info_by_fd(Get(env), &li, &len))
      throw SystemError(env, errno, "bpf_obj_get_info_by_fd");
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", li.id);
    o.Set("progId", li.prog_id);
    o.Set("type", li.type);
    o.Set("ifindex", li.type == BPF_LINK_TYPE_XDP ? li.xdp.ifindex : 0);
    return o;
  }
  Napi::Value Close(const Napi::CallbackInfo &info) {
    fd_.reset();
    return info.Env().Undefined();
  }
  std::shared_ptr<::Fd> fd_;
};

// ---- Program ----------------------------------------------------------------

class Program : public Wrapped<Program> {
 public:
  static constexpr const napi_type_tag &kTag = kProgramTag;
  static constexpr const char *kWhat = "a Program", *kPrefix = "program";
  static Napi::Function Init(Napi::Env env) {
    return Define(env, "Program",
                  {
                      Method<&Program::TestRun>(env, "testRun", 2),
                      Method<&Program::TestRunVaried>(env, "testRunVaried", 3),
                      Method<&Program::TestRunBatch>(env, "testRunBatch", 2),
                      Method<&Program::TestRunLive>(env, "testRunLive", 3),
                      Method<&Program::AttachXdp>(env, "attachXdp", 2),
                      Method<&Program::Info>(env, "info", 0),
                  });
  }
  static Napi::Object New(Napi::Env env, int fd, std::shared_ptr<LoadedObject> owner) {
    Napi::Object o = State(env).prog_ctor.New({});
    Program *p = Unwrap(o);
    p->fd_ = fd;
    p->owner_ = std::move(owner);
    return o;
  }
  explicit Program(const Napi::CallbackInfo &info) : Wrapped<Program>(info) {}
  int fd_ = -1;
  std::shared_ptr<LoadedObject> owner_;

 private:
  // testRun(packet, repeat) -> Promise<{ retval, packet, durationNs }>
  // durationNs is the kernel's average per repetition.
  Napi::Value TestRun(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    auto in = BufferArg(info, info[0], "packet");
    uint32_t repeat = NumberArg(info, info[1], "repeat").Uint32Value();
    struct Result {
      std::vector<uint8_t> in, out;
      uint32_t retval = 0, duration = 0, out_size = 0;
    };
    auto r = std::make_shared<Result>();
    r->in.assign(in.Data(), in.Data() + in.Length());
    r->out.resize(in.Length() + 256);
    int fd = fd_;
    auto owner = owner_;
    Job *job = new Job(
        env, "bpf_prog_test_run",
        [r, fd, repeat, owner]() {
          LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = r->in.data(),
                      .data_out = r->out.data(), .data_size_in = uint32_t(r->in.size()),
                      .data_size_out = uint32_t(r->out.size()), .repeat = int(repeat));
          if (bpf_prog_test_run_opts(fd, &opts)) return -errno;
          r->retval = opts.retval;
          r->duration = opts.duration;
          r->out_size = opts.data_size_out;
          return 0;
        },
        [r](Napi::Env env) {
          Napi::Object o = Napi::Object::New(env);
          o.Set("retval", r->retval);
          o.Set("durationNs", r->duration);
          o.Set("packet", Copy(env, r->out.data(), r->out_size));
          return o;
        });
    Napi::Promise p = job->Promise();
    job->Queue();
    return p;
  }
  // testRunVaried(packet, count, offset) -> Promise<{ meanNs, verdicts }>
  // Runs `count` frames one by one, each a copy of `packet` with a 32-bit
  // big-endian counter added at `offset`: a new flow on every run, which
  // `repeat` cannot give (it reuses one buffer). verdicts[v] counts retval v.
  Napi::Value TestRunVaried(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    auto in = BufferArg(info, info[0], "packet");
    uint32_t count = NumberArg(info, info[1], "count").Uint32Value();
    uint32_t offset = NumberArg(info, info[2], "offset").Uint32Value();
    if (size_t(offset) + 4 > in.Length())
      throw Napi::RangeError::New(env, Callee(info) + ": offset beyond the packet");
    struct Result {
      std::vector<uint8_t> frame;
      uint64_t total_ns = 0;
      uint32_t verdicts[5] = {};
    };
    auto r = std::make_shared<Result>();
    r->frame.assign(in.Data(), in.Data() + in.Length());
    int fd = fd_;
    auto owner = owner_;
    Job *job = new Job(
        env, "bpf_prog_test_run",
        [r, fd, count, offset, owner]() {
          std::vector<uint8_t> buf(r->frame), out(r->frame.size() + 256);
          uint32_t base;
          memcpy(&base, r->frame.data() + offset, 4);
          base = ntohl(base);
          for (uint32_t i = 0; i < count; i++) {
            memcpy(buf.data(), r->frame.data(), buf.size());
            uint32_t v = htonl(base + i);
            memcpy(buf.data() + offset, &v, 4);
            LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = buf.data(), .data_out = out.data(),
                        .data_size_in = uint32_t(buf.size()),
                        .data_size_out = uint32_t(out.size()), .repeat = 1);
            if (bpf_prog_test_run_opts(fd, &opts)) return -errno;
            r->total_ns += opts.duration;
            r->verdicts[opts.retval < 5 ? opts.retval : 0]++;
          }
          return 0;
        },
        [r, count](Napi::Env env) {
          Napi::Object o = Napi::Object::New(env);
          o.Set("meanNs", count ? double(r->total_ns) / count : 0.0);
          Napi::Array v = Napi::Array::New(env, 5);
          for (uint32_t i = 0; i < 5; i++) v[i] = r->verdicts[i];
          o.Set("verdicts", v);
          return o;
        });
    Napi::Promise p = job->Promise();
    job->Queue();
    return p;
  }
  // testRunBatch(frames, lengths) -> Promise<{ retvals, packets, lengths }>
  // Runs the frames packed back to back in `frames` (their sizes: `lengths`,
  // u32 in host order), one test run each (repeat 1), in order, in one
  // worker job: a frame sees the maps as the frames before it left them.
  // retvals: u32 per frame; packets: each output frame, back to back;
  // lengths: u32 per output. One job for many frames: the fuzzer's thousands
  // of runs a second would otherwise each pay a thread-pool round trip.
  Napi::Value TestRunBatch(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    auto frames = BufferArg(info, info[0], "frames");
    auto lengths = BufferArg(info, info[1], "lengths");
    if (lengths.Length() % 4)
      throw Napi::RangeError::New(env, Callee(info) + ": lengths must be u32 values (a multiple of 4 bytes)");
    size_t count = lengths.Length() / 4, total = 0;
    std::vector<uint32_t> sizes(count);
    memcpy(sizes.data(), lengths.Data(), lengths.Length());
    for (uint32_t n : sizes) total += n;
    if (total != frames.Length())
      throw Napi::RangeError::New(env, Callee(info) + ": lengths add up to " + std::to_string(total) +
                                           " bytes, frames has " + std::to_string(frames.Length()));
    struct Result {
      std::vector<uint8_t> in, out;
      std::vector<uint32_t> sizes, retvals, out_sizes;
    };
    auto r = std::make_shared<Result>();
    r->in.assign(frames.Data(), frames.Data() + frames.Length());
    r->sizes = std::move(sizes);
    r->out.resize(total + 256 * count);
    r->retvals.resize(count);
    r->out_sizes.resize(count);
    int fd = fd_;
    auto owner = owner_;
    Job *job = new Job(
        env, "bpf_prog_test_run",
        [r, fd, owner]() {
          size_t in_at = 0, out_at = 0;
          for (size_t i = 0; i < r->sizes.size(); i++) {
            uint32_t cap = r->sizes[i] + 256;
            LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = r->in.data() + in_at,
                        .data_out = r->out.data() + out_at, .data_size_in = r->sizes[i],
                        .data_size_out = cap, .repeat = 1);
            if (bpf_prog_test_run_opts(fd, &opts)) return -errno;
            r->retvals[i] = opts.retval;
            r->out_sizes[i] = opts.data_size_out;
            in_at += r->sizes[i];
            out_at += opts.data_size_out;
          }
          r->out.resize(out_at);
          return 0;
        },
        [r](Napi::Env env) {
          Napi::Object o = Napi::Object::New(env);
          o.Set("retvals", Copy(env, r->retvals.data(), 4 * r->retvals.size()));
          o.Set("packets", Copy(env, r->out.data(), r->out.size()));
          o.Set("lengths", Copy(env, r->out_sizes.data(), 4 * r->out_sizes.size()));
          return o;
        });
    Napi::Promise p = job->Promise();
    job->Queue();
    return p;
  }
  // testRunLive(packet, repeat, batchSize) -> Promise<{ wallNs }>
  // BPF_F_TEST_XDP_LIVE_FRAMES: the kernel runs the program `repeat` times on
  // frames made from `packet` and really sends what it returns XDP_TX or
  // XDP_REDIRECT for (a packet generator: bench/lab.ts). Frames come from a
  // page pool filled from `packet` once; a receiver can hand a page back
  // changed, so the program must write every byte it depends on. Interfaces
  // are resolved in this process's network namespace. wallNs: the call's
  // wall-clock time (the kernel reports no duration in this mode).
  Napi::Value TestRunLive(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    auto in = BufferArg(info, info[0], "packet");
    uint32_t repeat = NumberArg(info, info[1], "repeat").Uint32Value();
    uint32_t batch = NumberArg(info, info[2], "batchSize").Uint32Value();
    if (repeat == 0) throw Napi::RangeError::New(env, Callee(info) + ": repeat must be at least 1");
    struct Result {
      std::vector<uint8_t> in;
      uint64_t wall_ns = 0;
    };
    auto r = std::make_shared<Result>();
    r->in.assign(in.Data(), in.Data() + in.Length());
    int fd = fd_;
    auto owner = owner_;
    Job *job = new Job(
        env, "bpf_prog_test_run (live frames)",
        [r, fd, repeat, batch, owner]() {
          LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = r->in.data(),
                      .data_size_in = uint32_t(r->in.size()), .repeat = int(repeat),
                      .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = batch);
          timespec a, b;
          clock_gettime(CLOCK_MONOTONIC, &a);
          if (bpf_prog_test_run_opts(fd, &opts)) return -errno;
          clock_gettime(CLOCK_MONOTONIC, &b);
          r->wall_ns = uint64_t(b.tv_sec - a.tv_sec) * 1000000000ull + uint64_t(b.tv_nsec) - uint64_t(a.tv_nsec);
          return 0;
        },
        [r](Napi::Env env) {
          Napi::Object o = Napi::Object::New(env);
          o.Set("wallNs", double(r->wall_ns));
          return o;
        });
    Napi::Promise p = job->Promise();
    job->Queue();
    return p;
  }
  // attachXdp(ifindex, mode: "native"|"generic") -> Promise<Link>
  Napi::Value AttachXdp(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    int ifindex = NumberArg(info, info[0], "ifindex").Int32Value();
    std::string mode = StringArg(info, info[1], "mode");
    if (mode != "native" && mode != "generic") ThrowTypeError(info, "mode", "'native' or 'generic'", info[1]);
    uint32_t flags = mode == "generic" ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
    int fd = fd_;
    auto owner = owner_;
    auto link = std::make_shared<int>(-1);
    Job *job = new Job(
        env, "bpf_link_create",
        [fd, ifindex, flags, link, owner]() {
          LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
          int l = bpf_link_create(fd, ifindex, BPF_XDP, &opts);
          if (l < 0) return -errno;
          *link = l;
          return 0;
        },
        [link](Napi::Env env) -> Napi::Value { return Link::New(env, *link); });
    std::string what = "ifindex " + std::to_string(ifindex) + ", " + mode + " mode";
    job->detail = [what]() { return what; };
    Napi::Promise p = job->Promise();
    job->Queue();
    return p;
  }
  Napi::Value Info(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    bpf_prog_info pi = {};
    uint32_t len = sizeof(pi);
    if (bpf_obj_get_info_by_fd(fd_, &pi, &len))
      throw SystemError(env, errno, "bpf_obj_get_info_by_fd");
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", pi.id);
    o.Set("name", pi.name);
    o.Set("tag", Copy(env, pi.tag, sizeof(pi.tag)).ToString());
    return o;
  }
};

Napi::Value Link::Update(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Program *p = UnwrapArg<Program>(info, info[0], "program");
  if (bpf_link_update(Get(env), p->fd_, nullptr)) throw SystemError(env, errno, "bpf_link_update");
  return env.Undefined();
}

// ---- BpfObject ----------------------------------------------------------------

class BpfObject : public Wrapped<BpfObject> {
 public:
  static constexpr const napi_type_tag &kTag = kObjectTag;
  static constexpr const char *kWhat = "a BpfObject", *kPrefix = "object";
  static Napi::Function Init(Napi::Env env) {
    return Define(env, "BpfObject",
                  {
                      Method<&BpfObject::GetMap>(env, "map", 1),
                      Method<&BpfObject::GetProgram>(env, "program", 1),
                  });
  }
  explicit BpfObject(const Napi::CallbackInfo &info) : Wrapped<BpfObject>(info) {}
  std::shared_ptr<LoadedObject> obj_;

 private:
  // JS can construct one (new (object.constructor)()): it holds nothing.
  bpf_object *Get(Napi::Env env) {
    if (!obj_) throw SystemError(env, EBADF, "bpf_object", "no object loaded");
    return obj_->obj;
  }
  Napi::Value GetMap(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, info[0], "name");
    bpf_map *m = bpf_object__find_map_by_name(Get(env), name.c_str());
    if (!m) throw SystemError(env, ENOENT, "bpf_object__find_map_by_name", name);
    return Map::New(env, bpf_map__fd(m), obj_, false);
  }
  Napi::Value GetProgram(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, info[0], "name");
    bpf_program *p = bpf_object__find_program_by_name(Get(env), name.c_str());
    if (!p) throw SystemError(env, ENOENT, "bpf_object__find_program_by_name", name);
    return Program::New(env, bpf_program__fd(p), obj_);
  }
};

// Sets a `const volatile` global in .rodata by name, through the object's BTF.
int SetRodata(bpf_object *obj, const std::string &name, const std::vector<uint8_t> &bytes,
              std::string &why) {
  bpf_map *rodata = nullptr, *m;
  bpf_object__for_each_map(m, obj) {
    const char *n = bpf_map__name(m);
    size_t len = strlen(n);
    if (len >= 7 && strcmp(n + len - 7, ".rodata") == 0) rodata = m;
  }
  btf *b = bpf_object__btf(obj);
  if (!rodata || !b) {
    why = "object has no .rodata";
    return -ENOENT;
  }
  const btf_type *sec = btf__type_by_id(b, bpf_map__btf_value_type_id(rodata));
  if (!sec || !btf_is_datasec(sec)) {
    why = ".rodata has no BTF";
    return -ENOENT;
  }
  const btf_var_secinfo *vs = btf_var_secinfos(sec);
  for (int i = 0; i < btf_vlen(sec); i++, vs++) {
    const btf_type *var = btf__type_by_id(b, vs->type);
    if (name != btf__name_by_offset(b, var->name_off)) continue;
    if (vs->size != bytes.size()) {
      why = name + " is " + std::to_string(vs->size) + " bytes";
      return -EINVAL;
    }
    size_t size;
    void *data = const_cast<void *>(bpf_map__initial_value(rodata, &size));
    memcpy(static_cast<uint8_t *>(data) + vs->offset, bytes.data(), bytes.size());
    return 0;
  }
  why = "no knob " + name;
  return -ENOENT;
}

// loadObject(path, { rodata: {name: Buffer}, maxEntries: {map: n},
//   innerMaxEntries: {map: n}, pinDir?: string }) -> Promise<BpfObject>
// With pinDir, every map is pinned there by name, and maps already pinned
// there are reused (libbpf checks type, sizes and flags).
Napi::Value LoadObject(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = StringArg(info, info[0], "path");
  Napi::Object opts = ObjectArg(info, info[1], "options");
  struct Plan {
    std::string path, pin_dir, why;
    std::vector<std::pair<std::string, std::vector<uint8_t>>> rodata;
    std::vector<std::pair<std::string, uint32_t>> max_entries, inner_max_entries;
    std::shared_ptr<LoadedObject> loaded = std::make_shared<LoadedObject>();
  };
  auto plan = std::make_shared<Plan>();
  plan->path = path;
  // Calls each(key, value, "options.field.key") for every property of an
  // optional options.field, which must be an object.
  auto each = [&](const char *field, const auto &each) {
    Napi::Value v = opts.Get(field);
    if (!Given(v)) return;
    std::string what = std::string("options.") + field;
    Napi::Object o = ObjectArg(info, v, what);
    Napi::Array keys = o.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); i++) {
      std::string k = StringArg(info, keys.Get(i), what + " key");
      each(k, o.Get(k), what + "." + k);
    }
  };
  each("maxEntries", [&](const std::string &k, const Napi::Value &v, const std::string &what) {
    plan->max_entries.emplace_back(k, NumberArg(info, v, what).Uint32Value());
  });
  each("innerMaxEntries", [&](const std::string &k, const Napi::Value &v, const std::string &what) {
    plan->inner_max_entries.emplace_back(k, NumberArg(info, v, what).Uint32Value());
  });
  each("rodata", [&](const std::string &k, const Napi::Value &v, const std::string &what) {
    auto b = BufferArg(info, v, what);
    plan->rodata.emplace_back(k, std::vector<uint8_t>(b.Data(), b.Data() + b.Length()));
  });
  if (Napi::Value v = opts.Get("pinDir"); Given(v)) plan->pin_dir = StringArg(info, v, "options.pinDir");

  Job *job = new Job(
      env, "bpf_object__load",
      [plan]() -> int {
        bpf_object *obj = bpf_object__open_file(plan->path.c_str(), nullptr);
        if (!obj) {
          plan->why = plan->path;
          return -errno;
        }
        plan->loaded->obj = obj;
        for (auto &r : plan->rodata)
          if (int err = SetRodata(obj, r.first, r.second, plan->why)) return err;
        for (auto &me : plan->max_entries) {
          bpf_map *m = bpf_object__find_map_by_name(obj, me.first.c_str());
          if (!m) {
            plan->why = "no map " + me.first;
            return -ENOENT;
          }
          if (int err = bpf_map__set_max_entries(m, me.second)) return err;
        }
        for (auto &me : plan->inner_max_entries) {
          // libbpf 1.1 crashes in bpf_map__set_max_entries() on an inner
          // template (it has no object): give the outer map a template of
          // our own, alike but for max_entries.
          bpf_map *m = bpf_object__find_map_by_name(obj, me.first.c_str());
          bpf_map *inner = m ? bpf_map__inner_map(m) : nullptr;
          if (!inner) {
            plan->why = "no map-in-map " + me.first;
            return -ENOENT;
          }
          LIBBPF_OPTS(bpf_map_create_opts, create, .map_flags = bpf_map__map_flags(inner));
          int tmpl = bpf_map_create(bpf_map__type(inner), "xdplb_tmpl", bpf_map__key_size(inner),
                                    bpf_map__value_size(inner), me.second, &create);
          if (tmpl < 0) return -errno;
          if (int err = bpf_map__set_inner_map_fd(m, tmpl)) {
            close(tmpl);
            return err;
          }
        }
        if (!plan->pin_dir.empty()) {
          bpf_map *m;
          bpf_object__for_each_map(m, obj) {
            if (strchr(bpf_map__name(m), '.')) continue; /* .rodata: per program */
            std::string p = plan->pin_dir + "/" + bpf_map__name(m);
            int pinned = bpf_obj_get(p.c_str());
            if (pinned < 0) {
              if (errno != ENOENT) return -errno;
              // not pinned yet: libbpf creates and pins it
              if (int err = bpf_map__set_pin_path(m, p.c_str())) return err;
              continue;
            }
            // Adopt the pinned map after our own check: libbpf's would
            // refuse a devmap (the kernel adds BPF_F_RDONLY_PROG to it).
            bpf_map_info info = {};
            uint32_t len = sizeof(info);
            int err = bpf_obj_get_info_by_fd(pinned, &info, &len) ? -errno : 0;
            uint32_t flags_mask = ~uint32_t(BPF_F_RDONLY_PROG);
            if (!err && (info.type != bpf_map__type(m) || info.key_size != bpf_map__key_size(m) ||
                         info.value_size != bpf_map__value_size(m) ||
                         info.max_entries != bpf_map__max_entries(m) ||
                         (info.map_flags & flags_mask) != (bpf_map__map_flags(m) & flags_mask))) {
              plan->why = "pinned map " + p + " differs (type " + std::to_string(info.type) + "/" +
                          std::to_string(bpf_map__type(m)) + ", key " + std::to_string(info.key_size) + "/" +
                          std::to_string(bpf_map__key_size(m)) + ", value " + std::to_string(info.value_size) +
                          "/" + std::to_string(bpf_map__value_size(m)) + ", entries " +
                          std::to_string(info.max_entries) + "/" + std::to_string(bpf_map__max_entries(m)) +
                          ", pinned/wanted)";
              err = -EINVAL;
            }
            if (!err) err = bpf_map__reuse_fd(m, pinned);
            close(pinned);
            if (err) return err;
          }
        }
        if (int err = bpf_object__load(obj)) {
          plan->why = plan->path;
          return err;
        }
        return 0;
      },
      [plan](Napi::Env env) -> Napi::Value {
        Napi::Object o = State(env).object_ctor.New({});
        BpfObject::Unwrap(o)->obj_ = plan->loaded;
        return o;
      });
  job->detail = [plan]() { return plan->why; };
  Napi::Promise p = job->Promise();
  job->Queue();
  return p;
}

// ---- standalone objects --------------------------------------------------------

// The pinned object at path, as an fd of `kind` ("bpf-map", "bpf-link": the
// name of its anonymous inode). A pin of another kind is refused: a link's fd
// wrapped as a Map would read a bpf_link_info as a bpf_map_info.
int OpenPinned(Napi::Env env, const std::string &path, const char *kind) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) throw SystemError(env, errno, "bpf_obj_get", path);
  char target[64] = {};
  std::string self = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = readlink(self.c_str(), target, sizeof(target) - 1);
  std::string is = n > 0 ? std::string(target, n) : "unknown";
  if (is != std::string("anon_inode:") + kind) {
    close(fd);
    throw SystemError(env, EINVAL, "bpf_obj_get", path + " is " + is + ", not a " + kind);
  }
  return fd;
}

Napi::Value OpenPinnedMap(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = OpenPinned(env, StringArg(info, info[0], "path"), "bpf-map");
  return Map::New(env, fd, nullptr, true);
}

Napi::Value OpenPinnedLink(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return Link::New(env, OpenPinned(env, StringArg(info, info[0], "path"), "bpf-link"));
}

Napi::Value MapFromId(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint32_t id = NumberArg(info, info[0], "id").Uint32Value();
  int fd = bpf_map_get_fd_by_id(id);
  if (fd < 0) throw SystemError(env, errno, "bpf_map_get_fd_by_id", std::to_string(id));
  return Map::New(env, fd, nullptr, true);
}

// createArrayMap(valueSize, maxEntries, data): a BPF_F_MMAPABLE array filled
// with `data` through one mmap (no per-entry syscalls).
Napi::Value CreateArrayMap(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint32_t value_size = NumberArg(info, info[0], "valueSize").Uint32Value();
  uint32_t max_entries = NumberArg(info, info[1], "maxEntries").Uint32Value();
  auto data = BufferArg(info, info[2], "data", size_t(value_size) * max_entries);
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE);
  int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "xdplb_table", 4, value_size, max_entries, &opts);
  if (fd < 0) throw SystemError(env, errno, "bpf_map_create");
  size_t len = (data.Length() + 4095) & ~size_t(4095);
  void *mem = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) {
    int err = errno;
    close(fd);
    throw SystemError(env, err, "mmap");
  }
  memcpy(mem, data.Data(), data.Length());
  munmap(mem, len);
  return Map::New(env, fd, nullptr, true);
}

// An mmapable array map mapped into memory whole, unmapped when this goes
// out of scope. Its size comes from the map, never from JS.
class MappedArray {
 public:
  MappedArray(Napi::Env env, Map *map, int prot) {
    const bpf_map_info &i = map->MapInfo();
    bytes = size_t(i.value_size) * i.max_entries;
    len_ = (bytes + 4095) & ~size_t(4095);
    mem = mmap(nullptr, len_, prot, MAP_SHARED, map->Fd(env), 0);
    if (mem == MAP_FAILED) throw SystemError(env, errno, "mmap");
  }
  ~MappedArray() { munmap(mem, len_); }
  MappedArray(const MappedArray &) = delete;
  MappedArray &operator=(const MappedArray &) = delete;
  void *mem;
  size_t bytes;

 private:
  size_t len_;
};

// readArrayMap(map): the whole of an mmapable array map as one Buffer.
Napi::Value ReadArrayMap(const Napi::CallbackInfo &info) {
  MappedArray a(info.Env(), UnwrapArg<Map>(info, info[0], "map"), PROT_READ);
  return Copy(info.Env(), a.mem, a.bytes);
}

// patchArrayMap(map, data): makes an mmapable array map equal to `data` by
// storing only the 8-byte words that differ, each with one atomic store (the
// program reads them with one load). No new map and no map-in-map update, so
// no RCU grace period. Returns how many words changed.
Napi::Value PatchArrayMap(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Map *map = UnwrapArg<Map>(info, info[0], "map");
  auto data = BufferArg(info, info[1], "data");
  MappedArray a(env, map, PROT_READ | PROT_WRITE);
  if (data.Length() != a.bytes || a.bytes % 8)
    throw Napi::RangeError::New(env, Callee(info) + ": data must be the map's size, a multiple of 8 bytes");
  uint64_t *words = static_cast<uint64_t *>(a.mem);
  uint32_t changed = 0;
  for (size_t w = 0; w < a.bytes / 8; w++) {
    uint64_t v;
    memcpy(&v, data.Data() + w * 8, 8);
    if (__atomic_load_n(&words[w], __ATOMIC_RELAXED) == v) continue;
    __atomic_store_n(&words[w], v, __ATOMIC_RELAXED);
    changed++;
  }
  return Napi::Number::New(env, changed);
}

// interfaceInfo(name) -> { ifindex, mac } of an interface in this process's
// network namespace (through ioctls: /sys/class/net may show another one).
Napi::Value InterfaceInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info, info[0], "name");
  if (name.size() >= IFNAMSIZ) throw SystemError(env, ENAMETOOLONG, "if_nametoindex", name);
  unsigned idx = if_nametoindex(name.c_str());
  if (!idx) throw SystemError(env, errno, "if_nametoindex", name);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) throw SystemError(env, errno, "socket");
  ifreq ifr = {};
  strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  int rc = ioctl(s, SIOCGIFHWADDR, &ifr);
  int err = errno;
  close(s);
  if (rc) throw SystemError(env, err, "ioctl SIOCGIFHWADDR", name);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ifindex", idx);
  o.Set("mac", Copy(env, ifr.ifr_hwaddr.sa_data, 6));
  o.Set("hardwareType", ifr.ifr_hwaddr.sa_family); // ARPHRD_*: 1 Ethernet, 772 loopback
  return o;
}

// nicStats(name) -> { driver, stats: { name: number } }: the driver's name and
// its own counters (ethtool -i, ethtool -S), through SIOCETHTOOL. The names
// are the driver's; a driver with none gives {}.
Napi::Value NicStats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info, info[0], "name");
  if (name.size() >= IFNAMSIZ) throw SystemError(env, ENAMETOOLONG, "SIOCETHTOOL", name);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) throw SystemError(env, errno, "socket");
  auto call = [&](void *data) {
    ifreq ifr = {};
    strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    ifr.ifr_data = static_cast<char *>(data);
    return ioctl(s, SIOCETHTOOL, &ifr) == 0 ? 0 : -errno;
  };
  ethtool_drvinfo drv = {};
  drv.cmd = ETHTOOL_GDRVINFO;
  if (int err = call(&drv)) {
    close(s);
    throw SystemError(env, err, "ioctl SIOCETHTOOL (ETHTOOL_GDRVINFO)", name);
  }
  Napi::Object stats = Napi::Object::New(env);
  uint32_t n = drv.n_stats;
  if (n > 0 && n < 65536) {
    std::vector<uint8_t> strings(sizeof(ethtool_gstrings) + size_t(n) * ETH_GSTRING_LEN);
    auto *gs = reinterpret_cast<ethtool_gstrings *>(strings.data());
    gs->cmd = ETHTOOL_GSTRINGS;
    gs->string_set = ETH_SS_STATS;
    gs->len = n;
    std::vector<uint8_t> values(sizeof(ethtool_stats) + size_t(n) * sizeof(uint64_t));
    auto *st = reinterpret_cast<ethtool_stats *>(values.data());
    st->cmd = ETHTOOL_GSTATS;
    st->n_stats = n;
    if (call(gs) == 0 && call(st) == 0) {
      for (uint32_t i = 0; i < n && i < gs->len && i < st->n_stats; i++) {
        const char *key = reinterpret_cast<const char *>(gs->data + size_t(i) * ETH_GSTRING_LEN);
        stats.Set(std::string(key, strnlen(key, ETH_GSTRING_LEN)), Napi::Number::New(env, double(st->data[i])));
      }
    }
  }
  close(s);
  Napi::Object o = Napi::Object::New(env);
  o.Set("driver", std::string(drv.driver, strnlen(drv.driver, sizeof(drv.driver))));
  o.Set("stats", stats);
  return o;
}

// ---- locks ---------------------------------------------------------------------

// lockFile(path) -> fd: an exclusive flock on path (made 0600 if missing),
// held until unlockFile(fd) or the process ends (the kernel drops it then,
// however the process died). EWOULDBLOCK when another process holds it.
Napi::Value LockFile(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = StringArg(info, info[0], "path");
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) throw SystemError(env, errno, "open", path);
  if (flock(fd, LOCK_EX | LOCK_NB)) {
    int err = errno;
    close(fd);
    throw SystemError(env, err, "flock", path);
  }
  return Napi::Number::New(env, fd);
}

Napi::Value UnlockFile(const Napi::CallbackInfo &info) {
  close(NumberArg(info, info[0], "fd").Int32Value());
  return info.Env().Undefined();
}

// ---- netlink -------------------------------------------------------------------

// A netlink request failed; one the kernel did not answer in time (see
// netlink::kReplyTimeout) says so.
Napi::Error NetlinkError(Napi::Env env, int err, const char *request, int ifindex) {
  std::string detail = "ifindex " + std::to_string(ifindex);
  if (err == -ETIMEDOUT) detail += ", the kernel did not answer in time";
  return SystemError(env, err, request, detail);
}

// neighbours(ifindex) -> [{ family, address, mac|null, state }]
Napi::Value Neighbours(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::vector<netlink::Neighbour> list;
  int ifindex = NumberArg(info, info[0], "ifindex").Int32Value();
  if (int err = netlink::DumpNeighbours(ifindex, list)) throw NetlinkError(env, err, "RTM_GETNEIGH", ifindex);
  Napi::Array out = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("family", list[i].family);
    o.Set("address", Copy(env, list[i].address, 16));
    o.Set("mac", list[i].has_mac ? Napi::Value(Copy(env, list[i].mac, 6)) : env.Null());
    o.Set("state", list[i].state);
    out[i] = o;
  }
  return out;
}

// watchNeighbours(callback) -> stop(): the kernel's neighbour changes
// (RTNLGRP_NEIGH), as they happen. A uv_poll on the subscribed socket, on the
// JS thread (no thread of its own), unref'd: it keeps no process alive. The
// callback gets an array of { ifindex, deleted, family, address, mac, state }
// per wake-up, or null when the kernel dropped events (the socket's buffer
// overflowed): then the caller reads the table again. stop() ends it; it is
// idempotent.
struct NeighbourWatch {
  uv_poll_t poll;
  int fd;
  Napi::FunctionReference callback;
  Napi::Env env;
  bool stopped = false;
};

void OnNeighbourEvents(uv_poll_t *handle, int status, int) {
  auto *w = static_cast<NeighbourWatch *>(handle->data);
  Napi::HandleScope scope(w->env);
  std::vector<netlink::NeighbourEvent> events;
  int err = status < 0 ? status : netlink::ReadNeighbourEvents(w->fd, events);
  Napi::Value arg;
  if (err == -ENOBUFS) {
    arg = w->env.Null();
  } else {
    Napi::Array out = Napi::Array::New(w->env, events.size());
    for (size_t i = 0; i < events.size(); i++) {
      const auto &e = events[i];
      Napi::Object o = Napi::Object::New(w->env);
      o.Set("ifindex", e.ifindex);
      o.Set("deleted", e.deleted);
      o.Set("family", e.n.family);
      o.Set("address", Copy(w->env, e.n.address, 16));
      o.Set("mac", e.n.has_mac ? Napi::Value(Copy(w->env, e.n.mac, 6)) : w->env.Null());
      o.Set("state", e.n.state);
      out[i] = o;
    }
    if (events.empty()) return;
    arg = out;
  }
  try {
    w->callback.Call({arg});
  } catch (const Napi::Error &e) {
    // a throwing callback must not take the watch (or the process) down: it is reported, and watching goes on
    fprintf(stderr, "xdplb: the neighbour watch's callback threw: %s\n", e.Message().c_str());
  }
}

Napi::Value WatchNeighbours(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) ThrowTypeError(info, "callback", "a function", info[0]);
  int fd = netlink::OpenNeighbourEvents();
  if (fd < 0) throw SystemError(env, fd, "socket (NETLINK_ROUTE, RTNLGRP_NEIGH)");
  uv_loop_t *loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  auto *w = new NeighbourWatch{{}, fd, Napi::Persistent(info[0].As<Napi::Function>()), env};
  w->poll.data = w;
  if (int err = uv_poll_init(loop, &w->poll, fd)) {
    close(fd);
    delete w;
    throw SystemError(env, err, "uv_poll_init");
  }
  uv_poll_start(&w->poll, UV_READABLE, OnNeighbourEvents);
  uv_unref(reinterpret_cast<uv_handle_t *>(&w->poll));
  return Napi::Function::New(env, [w](const Napi::CallbackInfo &) {
    if (w->stopped) return;
    w->stopped = true;
    uv_poll_stop(&w->poll);
    w->callback.Reset();
    uv_close(reinterpret_cast<uv_handle_t *>(&w->poll), [](uv_handle_t *h) {
      auto *done = static_cast<NeighbourWatch *>(h->data);
      close(done->fd);
      delete done;
    });
  }, "stopWatchingNeighbours");
}

// addresses(ifindex) -> [{ family, address, prefixLength }]
Napi::Value Addresses(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::vector<netlink::Address> list;
  int ifindex = NumberArg(info, info[0], "ifindex").Int32Value();
  if (int err = netlink::DumpAddresses(ifindex, list)) throw NetlinkError(env, err, "RTM_GETADDR", ifindex);
  Napi::Array out = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("family", list[i].family);
    o.Set("address", Copy(env, list[i].address, 16));
    o.Set("prefixLength", list[i].prefix_length);
    out[i] = o;
  }
  return out;
}

// addAddress / deleteAddress(ifindex, family, address, prefixLength)
template <bool Add>
Napi::Value ChangeAddress(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int ifindex = NumberArg(info, info[0], "ifindex").Int32Value();
  uint8_t family = NumberArg(info, info[1], "family").Uint32Value();
  auto addr = BufferArg(info, info[2], "address", 16);
  uint8_t prefix = NumberArg(info, info[3], "prefixLength").Uint32Value();
  int err = Add ? netlink::AddAddress(ifindex, family, addr.Data(), prefix)
                : netlink::DeleteAddress(ifindex, family, addr.Data(), prefix);
  if (err) throw NetlinkError(env, err, Add ? "RTM_NEWADDR" : "RTM_DELADDR", ifindex);
  return env.Undefined();
}

// routes(table) -> [{ family, dst, prefixLength, protocol, ifindex }]: the unicast routes of a table.
Napi::Value Routes(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::vector<netlink::Route> list;
  uint32_t table = NumberArg(info, info[0], "table").Uint32Value();
  if (int err = netlink::DumpRoutes(table, list)) throw NetlinkError(env, err, "RTM_GETROUTE", 0);
  Napi::Array out = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("family", list[i].family);
    o.Set("dst", Copy(env, list[i].dst, 16));
    o.Set("prefixLength", list[i].prefix_length);
    o.Set("protocol", list[i].protocol);
    o.Set("ifindex", list[i].ifindex);
    out[i] = o;
  }
  return out;
}

// addRoute / deleteRoute(table, protocol, ifindex, family, dst, prefixLength)
template <bool Add>
Napi::Value ChangeRoute(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint32_t table = NumberArg(info, info[0], "table").Uint32Value();
  uint8_t protocol = NumberArg(info, info[1], "protocol").Uint32Value();
  int ifindex = NumberArg(info, info[2], "ifindex").Int32Value();
  uint8_t family = NumberArg(info, info[3], "family").Uint32Value();
  auto dst = BufferArg(info, info[4], "dst", 16);
  uint8_t prefix = NumberArg(info, info[5], "prefixLength").Uint32Value();
  int err = Add ? netlink::AddRoute(table, protocol, ifindex, family, dst.Data(), prefix)
                : netlink::DeleteRoute(table, protocol, ifindex, family, dst.Data(), prefix);
  if (err) throw NetlinkError(env, err, Add ? "RTM_NEWROUTE" : "RTM_DELROUTE", ifindex);
  return env.Undefined();
}

// announce(ifindex, mac, family, address): gratuitous ARP or unsolicited NA.
Napi::Value Announce(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int ifindex = NumberArg(info, info[0], "ifindex").Int32Value();
  auto mac = BufferArg(info, info[1], "mac", 6);
  uint8_t family = NumberArg(info, info[2], "family").Uint32Value();
  auto addr = BufferArg(info, info[3], "address", 16);
  int err = family == 4 ? netlink::SendGratuitousArp(ifindex, mac.Data(), addr.Data())
                        : netlink::SendUnsolicitedNa(ifindex, mac.Data(), addr.Data());
  if (err) throw SystemError(env, err, family == 4 ? "sendto (gratuitous ARP)" : "sendto (unsolicited NA)");
  return env.Undefined();
}

// listInterfaces() -> names of the interfaces in this network namespace.
Napi::Value ListInterfaces(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct if_nameindex *list = if_nameindex();
  if (!list) throw SystemError(env, errno, "if_nameindex");
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (struct if_nameindex *i = list; i->if_index; i++) out[n++] = i->if_name;
  if_freenameindex(list);
  return out;
}

Napi::Value SetLogger(const Napi::CallbackInfo &info) {
  Instance &st = State(info.Env());
  if (info[0].IsFunction())
    st.logger = Napi::Persistent(info[0].As<Napi::Function>());
  else if (info[0].IsNull() || info[0].IsUndefined())
    st.logger.Reset();
  else
    ThrowTypeError(info, "logger", "a function or null", info[0]);
  return info.Env().Undefined();
}

// abi() -> the layout of every ABI struct as this compiler sees it.
Napi::Value Abi(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", XDPLB_ABI_VERSION);
  o.Set("possibleCpus", PossibleCpus());
  Napi::Object layout = Napi::Object::New(env);
  auto add = [&](const char *name, size_t size,
                 std::initializer_list<std::pair<const char *, size_t>> fields) {
    Napi::Object s = Napi::Object::New(env);
    s.Set("size", size);
    Napi::Object f = Napi::Object::New(env);
    for (auto &p : fields) f.Set(p.first, p.second);
    s.Set("offsets", f);
    layout.Set(name, s);
  };
#define OFF(T, F) {#F, offsetof(T, F)}
  add("service_key", sizeof(xdplb_service_key),
      {OFF(xdplb_service_key, addr), OFF(xdplb_service_key, port),
       OFF(xdplb_service_key, proto), OFF(xdplb_service_key, family)});
  add("service", sizeof(xdplb_service),
      {OFF(xdplb_service, id), OFF(xdplb_service, flags), OFF(xdplb_service, seed)});
  add("service_entry", sizeof(xdplb_service_entry),
      {OFF(xdplb_service_entry, key), OFF(xdplb_service_entry, service)});
  add("slot", sizeof(xdplb_slot), {OFF(xdplb_slot, dest), OFF(xdplb_slot, prev_dest)});
  add("dest", sizeof(xdplb_dest),
      {OFF(xdplb_dest, ifindex), OFF(xdplb_dest, mac), OFF(xdplb_dest, src_mac),
       OFF(xdplb_dest, state), OFF(xdplb_dest, service)});
  add("dest_info", sizeof(xdplb_dest_info),
      {OFF(xdplb_dest_info, addr), OFF(xdplb_dest_info, service), OFF(xdplb_dest_info, weight),
       OFF(xdplb_dest_info, family), OFF(xdplb_dest_info, configured),
       OFF(xdplb_dest_info, health)});
  add("service_info", sizeof(xdplb_service_info),
      {OFF(xdplb_service_info, name), OFF(xdplb_service_info, entry),
       OFF(xdplb_service_info, table_sig)});
  add("flow_key", sizeof(xdplb_flow_key),
      {OFF(xdplb_flow_key, saddr), OFF(xdplb_flow_key, daddr), OFF(xdplb_flow_key, sport),
       OFF(xdplb_flow_key, dport), OFF(xdplb_flow_key, proto), OFF(xdplb_flow_key, family)});
  add("flow", sizeof(xdplb_flow),
      {OFF(xdplb_flow, dest), OFF(xdplb_flow, service), OFF(xdplb_flow, last_seen_ns)});
  add("traffic", sizeof(xdplb_traffic),
      {OFF(xdplb_traffic, packets), OFF(xdplb_traffic, bytes), OFF(xdplb_traffic, new_flows)});
  add("vip_key", sizeof(xdplb_vip_key), {OFF(xdplb_vip_key, addr), OFF(xdplb_vip_key, family)});
  add("vip_owner", sizeof(xdplb_vip_owner), {OFF(xdplb_vip_owner, until_ns)});
  add("ingress_mac", sizeof(xdplb_ingress_mac), {OFF(xdplb_ingress_mac, mac)});
  add("global", sizeof(xdplb_global), {OFF(xdplb_global, count)});
  add("global_ext", sizeof(xdplb_global_ext), {OFF(xdplb_global_ext, count)});
#undef OFF
  o.Set("layout", layout);
  Napi::Array stats = Napi::Array::New(env);
#define STAT_NAME(name, text) stats[uint32_t(XDPLB_STAT_##name)] = text;
  XDPLB_GLOBAL_STATS(STAT_NAME)
#undef STAT_NAME
  o.Set("globalStats", stats);
  Napi::Array ext = Napi::Array::New(env);
#define EXT_STAT_NAME(name, text) ext[uint32_t(XDPLB_EXT_STAT_##name)] = text;
  XDPLB_GLOBAL_EXT_STATS(EXT_STAT_NAME)
#undef EXT_STAT_NAME
  o.Set("globalExtStats", ext);
  Napi::Object c = Napi::Object::New(env);
  c.Set("SVC_F_SOURCE_HASH", XDPLB_SVC_F_SOURCE_HASH);
  c.Set("SVC_F_NO_BACKEND_PASS", XDPLB_SVC_F_NO_BACKEND_PASS);
  c.Set("DEST_UNUSED", XDPLB_DEST_UNUSED);
  c.Set("DEST_ACTIVE", XDPLB_DEST_ACTIVE);
  c.Set("DEST_DRAINING", XDPLB_DEST_DRAINING);
  c.Set("VIP_FILTER_WORDS", XDPLB_VIP_FILTER_WORDS);
  c.Set("DEFAULT_MAGLEV_SIZE", XDPLB_DEFAULT_MAGLEV_SIZE);
  c.Set("MAX_SERVICES", XDPLB_MAX_SERVICES);
  c.Set("MAX_DESTS", XDPLB_MAX_DESTS);
  c.Set("MAX_FLOWS", XDPLB_MAX_FLOWS);
  c.Set("SERVICE_INDEX_BITS", XDPLB_SERVICE_INDEX_BITS);
  c.Set("SERVICE_INDEX_COLLISION", XDPLB_SERVICE_INDEX_COLLISION);
  c.Set("GLOBAL_EXT_SLOTS", XDPLB_GLOBAL_EXT_SLOTS);
  o.Set("constants", c);
  return o;
}

// Every export checks its argument count first and drains libbpf's queued
// messages into the logger afterwards.
template <Napi::Value (*F)(const Napi::CallbackInfo &)>
Napi::Value Exported(const Napi::CallbackInfo &info) {
  struct Drain {
    Napi::Env env;
    ~Drain() { DrainLog(env); }
  } drain{info.Env()};
  CheckArgCount(info);
  return F(info);
}

// exports[name] = F, which needs `required` arguments.
template <Napi::Value (*F)(const Napi::CallbackInfo &)>
void Export(Napi::Env env, Napi::Object exports, const char *name, size_t required) {
  exports.Set(name, Napi::Function::New<Exported<F>>(env, name, Sign(env, name, required)));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<Instance>(new Instance());
  Instance &st = State(env);
  st.map_ctor = Napi::Persistent(Map::Init(env));
  st.prog_ctor = Napi::Persistent(Program::Init(env));
  st.link_ctor = Napi::Persistent(Link::Init(env));
  st.object_ctor = Napi::Persistent(BpfObject::Init(env));
  libbpf_set_print(LibbpfPrint);
  libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
  Export<LoadObject>(env, exports, "loadObject", 2);
  Export<OpenPinnedMap>(env, exports, "openPinnedMap", 1);
  Export<OpenPinnedLink>(env, exports, "openPinnedLink", 1);
  Export<MapFromId>(env, exports, "mapFromId", 1);
  Export<CreateArrayMap>(env, exports, "createArrayMap", 3);
  Export<ReadArrayMap>(env, exports, "readArrayMap", 1);
  Export<PatchArrayMap>(env, exports, "patchArrayMap", 2);
  Export<InterfaceInfo>(env, exports, "interfaceInfo", 1);
  Export<NicStats>(env, exports, "nicStats", 1);
  Export<LockFile>(env, exports, "lockFile", 1);
  Export<UnlockFile>(env, exports, "unlockFile", 1);
  Export<SetLogger>(env, exports, "setLogger", 1);
  Export<ListInterfaces>(env, exports, "listInterfaces", 0);
  Export<Neighbours>(env, exports, "neighbours", 1);
  Export<Addresses>(env, exports, "addresses", 1);
  Export<ChangeAddress<true>>(env, exports, "addAddress", 4);
  Export<ChangeAddress<false>>(env, exports, "deleteAddress", 4);
  Export<WatchNeighbours>(env, exports, "watchNeighbours", 1);
  Export<Routes>(env, exports, "routes", 1);
  Export<ChangeRoute<true>>(env, exports, "addRoute", 6);
  Export<ChangeRoute<false>>(env, exports, "deleteRoute", 6);
  Export<Announce>(env, exports, "announce", 4);
  Export<Abi>(env, exports, "abi", 0);
  return exports;
}

}  // namespace

NODE_API_MODULE(xdplb, Init)
