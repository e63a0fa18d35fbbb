// XLA FFI handlers over oneDNN's RNN primitives: one recurrent layer (one direction, or both concatenated)
// of a vanilla RNN (tanh, relu), an LSTM (optionally projected) or a linear-before-reset GRU, float32, over
// a fixed-length, time-major batch. rnn_jax/kernels/onednn.py owns the semantics: it converts parameters to
// the layouts below, handles variable lengths around these calls and differentiates them (custom_vjp).
//
// Layouts (oneDNN's names; L = 1 layer per call, D = 1 or 2 directions, G gates):
//   x [T, N, SLC] (tnc), h0/hn [1, D, N, DIC] (ldnc), c0/cn [1, D, N, DHC] (LSTM; else shape [0]),
//   w_layer [1, D, SLC, G, DHC] and w_iter [1, D, DIC, G, DHC] (ldigo), bias [1, D, Gb, DHC] (ldgo),
//   w_proj [1, D, DHC, DIC] (ldio; LSTMP, else shape [0]), y [T, N, D * DIC] (tnc), workspace: bytes.
// Attributes: cell (0 tanh RNN, 1 relu RNN, 2 LSTM, 3 GRU), direction (0 left-to-right, 1 right-to-left,
// 2 both, outputs concatenated), training (1: forward training, which fills the workspace; 0: inference),
// threads (the OpenMP threads of this call, 0: OpenMP's default; the calling thread's setting is restored
// after the call, so other OpenMP users on that thread, e.g. torch, keep theirs).
// Primitives are cached per shape; the scratchpad is the caller's (user mode), so concurrent calls from
// XLA's threads do not share one.

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

extern "C" {  // libgomp, which libdnnl.so.3 (GNU OpenMP threading) loads
int omp_get_max_threads(void);
void omp_set_num_threads(int);
}

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

enum Cell : int32_t { kRnnTanh = 0, kRnnRelu = 1, kLstm = 2, kGru = 3 };

struct Shape {
  int32_t cell, direction;
  int64_t T, N, SLC, DHC, DIC;
  bool projected;
  auto key() const { return std::make_tuple(cell, direction, T, N, SLC, DHC, DIC, projected); }
};

int64_t Gates(int32_t cell) { return cell == kLstm ? 4 : cell == kGru ? 3 : 1; }
int64_t BiasGates(int32_t cell) { return cell == kGru ? 4 : Gates(cell); }
int64_t Dirs(const Shape& s) { return s.direction == 2 ? 2 : 1; }

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::rnn_direction Direction(int32_t d) {
  if (d == 0) return dnnl::rnn_direction::unidirectional_left2right;
  if (d == 1) return dnnl::rnn_direction::unidirectional_right2left;
  return dnnl::rnn_direction::bidirectional_concat;
}

memory::desc Md(const memory::dims& dims, Tag tag) { return memory::desc(dims, Dt::f32, tag); }

// Memory descriptors of every argument in the callers' layouts (weights 'any' when asked, to let oneDNN
// choose its own layout; the call reorders into it).
struct Descs {
  memory::desc src_layer, src_iter, src_iter_c, w_layer, w_iter, w_proj, bias, dst_layer, dst_iter, dst_iter_c;
};

Descs MakeDescs(const Shape& s, bool any_weights) {
  const int64_t D = Dirs(s), G = Gates(s.cell);
  const Tag wtag = any_weights ? Tag::any : Tag::ldigo;
  Descs d;
  d.src_layer = Md({s.T, s.N, s.SLC}, Tag::tnc);
  d.src_iter = Md({1, D, s.N, s.DIC}, Tag::ldnc);
  d.w_layer = Md({1, D, s.SLC, G, s.DHC}, wtag);
  d.w_iter = Md({1, D, s.DIC, G, s.DHC}, wtag);
  d.bias = Md({1, D, BiasGates(s.cell), s.DHC}, Tag::ldgo);
  d.dst_layer = Md({s.T, s.N, D * s.DIC}, Tag::tnc);
  d.dst_iter = Md({1, D, s.N, s.DIC}, Tag::ldnc);
  if (s.cell == kLstm) {
    d.src_iter_c = Md({1, D, s.N, s.DHC}, Tag::ldnc);
    d.dst_iter_c = Md({1, D, s.N, s.DHC}, Tag::ldnc);
  }
  if (s.projected) d.w_proj = Md({1, D, s.DHC, s.DIC}, any_weights ? Tag::any : Tag::ldio);
  return d;
}

dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::primitive_desc ForwardDesc(const Shape& s, bool training) {
  const Descs d = MakeDescs(s, true);
  const auto prop = training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  const auto dir = Direction(s.direction);
  const auto& e = Engine();
  if (s.cell == kLstm)
    return dnnl::lstm_forward::primitive_desc(e, prop, dir, d.src_layer, d.src_iter, d.src_iter_c, d.w_layer,
                                              d.w_iter, memory::desc(), d.w_proj, d.bias, d.dst_layer,
                                              d.dst_iter, d.dst_iter_c, UserScratchpad());
  if (s.cell == kGru)
    return dnnl::lbr_gru_forward::primitive_desc(e, prop, dir, d.src_layer, d.src_iter, d.w_layer, d.w_iter,
                                                 d.bias, d.dst_layer, d.dst_iter, UserScratchpad());
  const auto act = s.cell == kRnnRelu ? dnnl::algorithm::eltwise_relu : dnnl::algorithm::eltwise_tanh;
  return dnnl::vanilla_rnn_forward::primitive_desc(e, prop, act, dir, d.src_layer, d.src_iter, d.w_layer,
                                                   d.w_iter, d.bias, d.dst_layer, d.dst_iter, UserScratchpad());
}

// A new handle to the same primitive descriptor (the typed descriptors take ownership of the one they get).
dnnl_primitive_desc_t Clone(const dnnl::primitive_desc& pd) {
  dnnl_primitive_desc_t copy = nullptr;
  dnnl::error::wrap_c_api(dnnl_primitive_desc_clone(&copy, pd.get()), "could not clone a primitive descriptor");
  return copy;
}

dnnl::primitive_desc BackwardDesc(const Shape& s, const dnnl::primitive_desc& fwd) {
  const Descs d = MakeDescs(s, true);
  const auto prop = dnnl::prop_kind::backward;
  const auto dir = Direction(s.direction);
  const auto& e = Engine();
  if (s.cell == kLstm)
    return dnnl::lstm_backward::primitive_desc(
        e, prop, dir, d.src_layer, d.src_iter, d.src_iter_c, d.w_layer, d.w_iter, memory::desc(), d.w_proj,
        d.bias, d.dst_layer, d.dst_iter, d.dst_iter_c, d.src_layer, d.src_iter, d.src_iter_c, d.w_layer,
        d.w_iter, memory::desc(), d.w_proj, d.bias, d.dst_layer, d.dst_iter, d.dst_iter_c,
        dnnl::lstm_forward::primitive_desc(Clone(fwd)), UserScratchpad());
  if (s.cell == kGru)
    return dnnl::lbr_gru_backward::primitive_desc(
        e, prop, dir, d.src_layer, d.src_iter, d.w_layer, d.w_iter, d.bias, d.dst_layer, d.dst_iter,
        d.src_layer, d.src_iter, d.w_layer, d.w_iter, d.bias, d.dst_layer, d.dst_iter,
        dnnl::lbr_gru_forward::primitive_desc(Clone(fwd)), UserScratchpad());
  const auto act = s.cell == kRnnRelu ? dnnl::algorithm::eltwise_relu : dnnl::algorithm::eltwise_tanh;
  return dnnl::vanilla_rnn_backward::primitive_desc(
      e, prop, act, dir, d.src_layer, d.src_iter, d.w_layer, d.w_iter, d.bias, d.dst_layer, d.dst_iter,
      d.src_layer, d.src_iter, d.w_layer, d.w_iter, d.bias, d.dst_layer, d.dst_iter,
      dnnl::vanilla_rnn_forward::primitive_desc(Clone(fwd)), UserScratchpad());
}
// Sets the calling thread's OpenMP thread count for one call (0: leaves it) and restores it after.
class ThreadScope {
 public:
  explicit ThreadScope(int32_t threads) : saved_(omp_get_max_threads()), set_(threads > 0) {
    if (set_) omp_set_num_threads(threads);
  }
  ~ThreadScope() {
    if (set_) omp_set_num_threads(saved_);
  }

 private:
  int saved_;
  bool set_;
};

// The forward (training or inference) and backward primitives of one shape, built once.
struct Primitives {
  dnnl::primitive_desc fwd_pd, bwd_pd;
  dnnl::primitive fwd, bwd;
};

std::shared_ptr<Primitives> Lookup(const Shape& s, bool training, bool backward) {
  static std::mutex mutex;
  static std::map<std::tuple<decltype(s.key()), bool>, std::shared_ptr<Primitives>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& entry = cache[std::make_tuple(s.key(), training || backward)];
  if (!entry) {
    entry = std::make_shared<Primitives>();
    entry->fwd_pd = ForwardDesc(s, training || backward);
    entry->fwd = dnnl::primitive(entry->fwd_pd);
  }
  if (backward && !entry->bwd) {
    entry->bwd_pd = BackwardDesc(s, entry->fwd_pd);
    entry->bwd = dnnl::primitive(entry->bwd_pd);
  }
  return entry;
}

memory::desc ArgDesc(const dnnl::primitive_desc& pd, int arg) {
  return pd.query_md(dnnl::query::exec_arg_md, arg);
}

// A growing per-thread buffer (scratchpad, reordered weights): no allocation per call after the first.
void* ThreadBuffer(int slot, size_t bytes) {
  thread_local std::vector<std::vector<uint8_t>> buffers(8);
  auto& b = buffers[slot];
  if (b.size() < bytes) b.resize(bytes);
  return b.data();
}

// Wraps `data` (in `user` layout) as the primitive's argument `arg`, reordering into the layout the
// primitive wants (into a thread buffer `slot`) when the two differ.
memory Input(const dnnl::primitive_desc& pd, int arg, const memory::desc& user, void* data,
             dnnl::stream& stream, int slot) {
  memory src(user, Engine(), data);
  const memory::desc want = ArgDesc(pd, arg);
  if (want == user) return src;
  memory dst(want, Engine(), ThreadBuffer(slot, want.get_size()));
  dnnl::reorder(src, dst).execute(stream, src, dst);
  return dst;
}

// An output argument: written in place when layouts agree, else through a thread buffer and copied back
// by `Flush`.
struct Output {
  memory user, prim;
};

Output MakeOutput(const dnnl::primitive_desc& pd, int arg, const memory::desc& user, void* data, int slot) {
  Output o{memory(user, Engine(), data), memory()};
  const memory::desc want = ArgDesc(pd, arg);
  o.prim = want == user ? o.user : memory(want, Engine(), ThreadBuffer(slot, want.get_size()));
  return o;
}

void Flush(Output o, dnnl::stream& stream) {
  if (o.prim.get() != o.user.get()) dnnl::reorder(o.prim, o.user).execute(stream, o.prim, o.user);
}

memory Scratchpad(const dnnl::primitive_desc& pd) {
  const memory::desc md = pd.scratchpad_desc();
  return memory(md, Engine(), ThreadBuffer(0, md.get_size()));
}

template <typename B>
std::vector<int64_t> Dims(const B& buffer) {
  auto d = buffer.dimensions();
  return std::vector<int64_t>(d.begin(), d.end());
}

// Reads the layer's sizes off the buffers and checks every buffer's shape against them.
ffi::Error ReadShape(int32_t cell, int32_t direction, const std::vector<int64_t>& x,
                     const std::vector<int64_t>& w_layer, const std::vector<int64_t>& w_iter,
                     const std::vector<int64_t>& w_proj, Shape* s) {
  if (cell < 0 || cell > 3 || direction < 0 || direction > 2)
    return ffi::Error::InvalidArgument("cell must be in [0, 3] and direction in [0, 2]");
  if (x.size() != 3 || w_layer.size() != 5 || w_iter.size() != 5)
    return ffi::Error::InvalidArgument("x must be [T, N, C] and the weights [1, D, in, G, H]");
  *s = Shape{cell, direction, x[0], x[1], x[2], w_layer[4], w_iter[2], w_proj.size() == 4};
  const int64_t D = Dirs(*s), G = Gates(cell);
  if (w_layer != std::vector<int64_t>{1, D, s->SLC, G, s->DHC} ||
      w_iter != std::vector<int64_t>{1, D, s->DIC, G, s->DHC})
    return ffi::Error::InvalidArgument("weights do not match x and the cell");
  if (!s->projected && s->DIC != s->DHC)
    return ffi::Error::InvalidArgument("w_iter's input size must equal the hidden size without projection");
  return ffi::Error::Success();
}

using F32 = ffi::Buffer<ffi::F32>;
using F32Out = ffi::ResultBuffer<ffi::F32>;

ffi::Error ForwardImpl(F32 x, F32 h0, F32 c0, F32 w_layer, F32 w_iter, F32 bias, F32 w_proj, F32Out y,
                       F32Out hn, F32Out cn, ffi::ResultBuffer<ffi::U8> workspace, int32_t cell,
                       int32_t direction, int32_t training, int32_t threads) try {
  ThreadScope thread_scope(threads);
  Shape s;
  if (auto e = ReadShape(cell, direction, Dims(x), Dims(w_layer), Dims(w_iter), Dims(w_proj), &s); e.failure())
    return e;
  auto p = Lookup(s, training != 0, false);
  const auto& pd = p->fwd_pd;
  const Descs d = MakeDescs(s, false);
  dnnl::stream stream(Engine());
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC_LAYER, memory(d.src_layer, Engine(), x.untyped_data())},
      {DNNL_ARG_SRC_ITER, memory(d.src_iter, Engine(), h0.untyped_data())},
      {DNNL_ARG_WEIGHTS_LAYER, Input(pd, DNNL_ARG_WEIGHTS_LAYER, d.w_layer, w_layer.untyped_data(), stream, 1)},
      {DNNL_ARG_WEIGHTS_ITER, Input(pd, DNNL_ARG_WEIGHTS_ITER, d.w_iter, w_iter.untyped_data(), stream, 2)},
      {DNNL_ARG_BIAS, memory(d.bias, Engine(), bias.untyped_data())},
      {DNNL_ARG_DST_LAYER, memory(d.dst_layer, Engine(), y->untyped_data())},
      {DNNL_ARG_DST_ITER, memory(d.dst_iter, Engine(), hn->untyped_data())},
      {DNNL_ARG_SCRATCHPAD, Scratchpad(pd)}};
  if (s.cell == kLstm) {
    args[DNNL_ARG_SRC_ITER_C] = memory(d.src_iter_c, Engine(), c0.untyped_data());
    args[DNNL_ARG_DST_ITER_C] = memory(d.dst_iter_c, Engine(), cn->untyped_data());
  }
  if (s.projected)
    args[DNNL_ARG_WEIGHTS_PROJECTION] =
        Input(pd, DNNL_ARG_WEIGHTS_PROJECTION, d.w_proj, w_proj.untyped_data(), stream, 3);
  if (training) {
    const memory::desc ws = pd.workspace_desc();
    if (static_cast<size_t>(workspace->size_bytes()) < ws.get_size())
      return ffi::Error::InvalidArgument("workspace is smaller than the primitive's");
    args[DNNL_ARG_WORKSPACE] = memory(ws, Engine(), workspace->untyped_data());
  }
  p->fwd.execute(stream, args);
  stream.wait();
  return ffi::Error::Success();
} catch (const dnnl::error& e) {
  return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN: ") + e.what());
}

// Zeroes a gradient output first: oneDNN's backward adds the weight gradients to what it finds.
Output GradOutput(const dnnl::primitive_desc& pd, int arg, const memory::desc& user, void* data, int slot) {
  Output o = MakeOutput(pd, arg, user, data, slot);
  std::memset(o.prim.get_data_handle(), 0, o.prim.get_desc().get_size());
  return o;
}

ffi::Error BackwardImpl(F32 x, F32 h0, F32 c0, F32 w_layer, F32 w_iter, F32 bias, F32 w_proj, F32 y, F32 hn,
                        F32 cn, ffi::Buffer<ffi::U8> workspace, F32 dy, F32 dhn, F32 dcn, F32Out dx,
                        F32Out dh0, F32Out dc0, F32Out dw_layer, F32Out dw_iter, F32Out dbias, F32Out dw_proj,
                        int32_t cell, int32_t direction, int32_t threads) try {
  ThreadScope thread_scope(threads);
  Shape s;
  if (auto e = ReadShape(cell, direction, Dims(x), Dims(w_layer), Dims(w_iter), Dims(w_proj), &s); e.failure())
    return e;
  auto p = Lookup(s, true, true);
  const auto& pd = p->bwd_pd;
  const Descs d = MakeDescs(s, false);
  dnnl::stream stream(Engine());
  auto wrap = [](const memory::desc& md, void* data) { return memory(md, Engine(), data); };
  std::vector<Output> grads{GradOutput(pd, DNNL_ARG_DIFF_WEIGHTS_LAYER, d.w_layer, dw_layer->untyped_data(), 4),
                            GradOutput(pd, DNNL_ARG_DIFF_WEIGHTS_ITER, d.w_iter, dw_iter->untyped_data(), 5),
                            GradOutput(pd, DNNL_ARG_DIFF_BIAS, d.bias, dbias->untyped_data(), 6)};
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC_LAYER, wrap(d.src_layer, x.untyped_data())},
      {DNNL_ARG_SRC_ITER, wrap(d.src_iter, h0.untyped_data())},
      {DNNL_ARG_WEIGHTS_LAYER, Input(pd, DNNL_ARG_WEIGHTS_LAYER, d.w_layer, w_layer.untyped_data(), stream, 1)},
      {DNNL_ARG_WEIGHTS_ITER, Input(pd, DNNL_ARG_WEIGHTS_ITER, d.w_iter, w_iter.untyped_data(), stream, 2)},
      {DNNL_ARG_BIAS, wrap(d.bias, bias.untyped_data())},
      {DNNL_ARG_DST_LAYER, wrap(d.dst_layer, y.untyped_data())},
      {DNNL_ARG_DST_ITER, wrap(d.dst_iter, hn.untyped_data())},
      {DNNL_ARG_WORKSPACE, wrap(pd.workspace_desc(), workspace.untyped_data())},
      {DNNL_ARG_DIFF_DST_LAYER, wrap(d.dst_layer, dy.untyped_data())},
      {DNNL_ARG_DIFF_DST_ITER, wrap(d.dst_iter, dhn.untyped_data())},
      {DNNL_ARG_DIFF_SRC_LAYER, wrap(d.src_layer, dx->untyped_data())},
      {DNNL_ARG_DIFF_SRC_ITER, wrap(d.src_iter, dh0->untyped_data())},
      {DNNL_ARG_DIFF_WEIGHTS_LAYER, grads[0].prim},
      {DNNL_ARG_DIFF_WEIGHTS_ITER, grads[1].prim},
      {DNNL_ARG_DIFF_BIAS, grads[2].prim},
      {DNNL_ARG_SCRATCHPAD, Scratchpad(pd)}};
  if (s.cell == kLstm) {
    args[DNNL_ARG_SRC_ITER_C] = wrap(d.src_iter_c, c0.untyped_data());
    args[DNNL_ARG_DST_ITER_C] = wrap(d.dst_iter_c, cn.untyped_data());
    args[DNNL_ARG_DIFF_DST_ITER_C] = wrap(d.dst_iter_c, dcn.untyped_data());
    args[DNNL_ARG_DIFF_SRC_ITER_C] = wrap(d.src_iter_c, dc0->untyped_data());
  }
  if (s.projected) {
    args[DNNL_ARG_WEIGHTS_PROJECTION] =
        Input(pd, DNNL_ARG_WEIGHTS_PROJECTION, d.w_proj, w_proj.untyped_data(), stream, 3);
    grads.push_back(GradOutput(pd, DNNL_ARG_DIFF_WEIGHTS_PROJECTION, d.w_proj, dw_proj->untyped_data(), 7));
    args[DNNL_ARG_DIFF_WEIGHTS_PROJECTION] = grads.back().prim;
  }
  p->bwd.execute(stream, args);
  for (auto& g : grads) Flush(g, stream);
  stream.wait();
  return ffi::Error::Success();
} catch (const dnnl::error& e) {
  return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN: ") + e.what());
}

}  // namespace

namespace {
// The arguments both handlers take first: the layer's inputs and weights, in this order.
template <typename Binding>
auto LayerArgs(Binding binding) {
  return std::move(binding).template Arg<F32>()  // x
      .template Arg<F32>()             // h0
      .template Arg<F32>()             // c0
      .template Arg<F32>()             // w_layer
      .template Arg<F32>()             // w_iter
      .template Arg<F32>()             // bias
      .template Arg<F32>();            // w_proj
}
}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(rnn_jax_onednn_rnn_forward, ForwardImpl,
                              LayerArgs(ffi::Ffi::Bind())
                                  .Ret<F32>()                   // y
                                  .Ret<F32>()                   // hn
                                  .Ret<F32>()                   // cn
                                  .Ret<ffi::Buffer<ffi::U8>>()  // workspace
                                  .Attr<int32_t>("cell")
                                  .Attr<int32_t>("direction")
                                  .Attr<int32_t>("training")
                                  .Attr<int32_t>("threads"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(rnn_jax_onednn_rnn_backward, BackwardImpl,
                              LayerArgs(ffi::Ffi::Bind())
                                  .Arg<F32>()                   // y
                                  .Arg<F32>()                   // hn
                                  .Arg<F32>()                   // cn
                                  .Arg<ffi::Buffer<ffi::U8>>()  // workspace
                                  .Arg<F32>()                   // dy
                                  .Arg<F32>()                   // dhn
                                  .Arg<F32>()                   // dcn
                                  .Ret<F32>()                   // dx
                                  .Ret<F32>()                   // dh0
                                  .Ret<F32>()                   // dc0
                                  .Ret<F32>()                   // dw_layer
                                  .Ret<F32>()                   // dw_iter
                                  .Ret<F32>()                   // dbias
                                  .Ret<F32>()                   // dw_proj
                                  .Attr<int32_t>("cell")
                                  .Attr<int32_t>("direction")
                                  .Attr<int32_t>("threads"));

// The workspace a training forward of this shape fills (bytes), or -1 with `error` set (a C string owned
// by the library until the next failing call on this thread). Called through ctypes at trace time.
extern "C" int64_t rnn_jax_onednn_workspace_bytes(int32_t cell, int32_t direction, int64_t T, int64_t N,
                                                  int64_t SLC, int64_t DHC, int64_t DIC, int32_t projected,
                                                  const char** error) {
  thread_local std::string message;
  try {
    const Shape s{cell, direction, T, N, SLC, DHC, DIC, projected != 0};
    return static_cast<int64_t>(Lookup(s, true, false)->fwd_pd.workspace_desc().get_size());
  } catch (const std::exception& e) {
    message = e.what();
    *error = message.c_str();
    return -1;
  }
}

// oneDNN's version, "major.minor.patch", for the error messages and the benchmark's records.
extern "C" const char* rnn_jax_onednn_version() {
  thread_local std::string text;
  const dnnl_version_t* v = dnnl_version();
  text = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  return text.c_str();
}
