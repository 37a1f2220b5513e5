#include "plugins/llama-executor/distillation.h"

#include <ggml-backend.h>
#include <ggml-opt.h>
#include <gguf.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <utility>

#include "plugins/llama-executor/f32_copy.h"
#include "plugins/llama-executor/gguf_bytes.h"

namespace memos::llama_exec {
namespace {

// The training context: llama.cpp pads a context to 256 cells, and one
// window of that many tokens forward and backward is one step.
constexpr std::uint32_t kWindow = 256;

struct DatasetFree {
  void operator()(ggml_opt_dataset* d) const { ggml_opt_dataset_free(d); }
};
struct ResultFree {
  void operator()(ggml_opt_result* r) const { ggml_opt_result_free(r); }
};

ggml_opt_optimizer_params optimizer_params(void* learning_rate) {
  ggml_opt_optimizer_params p = ggml_opt_get_default_optimizer_params(nullptr);
  p.adamw.alpha = *static_cast<const float*>(learning_rate);
  p.adamw.wd = 0;  // the change is what becomes the adapter: no pull towards 0
  return p;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Whether `name` is "blk.N.<matrix>.weight" for one of `matrices` and N
// at least `first_block`.
bool is_block_matrix(const std::string& name, const std::vector<std::string>& matrices,
                     std::uint32_t first_block) {
  if (name.rfind("blk.", 0) != 0) return false;
  char* end = nullptr;
  const unsigned long block = std::strtoul(name.c_str() + 4, &end, 10);
  if (end == name.c_str() + 4 || *end != '.' || block < first_block) return false;
  for (const std::string& m : matrices) {
    if (ends_with(name, "." + m + ".weight")) return true;
  }
  return false;
}

void check_options(const DistillOptions& o) {
  if (o.rank < 1 || o.rank > kMaxDistillRank) {
    throw std::invalid_argument("the rank must be 1 to " + std::to_string(kMaxDistillRank));
  }
  if (o.steps < 1 || o.steps > kMaxDistillSteps) {
    throw std::invalid_argument("the steps must be 1 to " + std::to_string(kMaxDistillSteps));
  }
  if (!std::isfinite(o.learning_rate) || o.learning_rate <= 0 || o.learning_rate > 1) {
    throw std::invalid_argument("the learning rate must be in (0, 1]");
  }
  if (o.matrices.empty()) throw std::invalid_argument("no matrices to train");
}

}  // namespace

std::uint32_t train_blocks(std::uint32_t n_layer) {
  if (n_layer <= 6) return n_layer;
  return (n_layer + 2) / 3;
}

Distillation::Distillation(const std::string& model_path, std::string base_model_hex,
                           std::string architecture,
                           const std::vector<std::vector<llama_token>>& texts,
                           const DistillOptions& options)
    : options_(options),
      base_model_(std::move(base_model_hex)),
      architecture_(std::move(architecture)) {
  check_options(options_);
  if (texts.empty()) throw std::invalid_argument("no memories to distill");
  if (texts.size() > kMaxDistillTexts) {
    throw std::invalid_argument("at most " + std::to_string(kMaxDistillTexts) + " memories");
  }
  for (const auto& t : texts) {
    if (stream_.size() + t.size() > kMaxDistillTokens) {
      throw std::invalid_argument("the memories hold over " + std::to_string(kMaxDistillTokens) +
                                  " tokens");
    }
    stream_.insert(stream_.end(), t.begin(), t.end());
  }
  if (stream_.size() < 2) throw std::invalid_argument("the memories hold no text to learn");
  progress_.tokens = static_cast<std::uint32_t>(stream_.size());

  // Which matrices, from the file's metadata, and whether llama.cpp, which
  // trains F32 tensors only, needs an F32 copy of the model.
  F32Need need;
  {
    ggml_context* shapes_raw = nullptr;
    GgufPtr meta(gguf_init_from_file(model_path.c_str(), {/*no_alloc=*/true, &shapes_raw}));
    GgmlPtr shapes(shapes_raw);
    if (!meta) throw std::runtime_error("cannot read the model " + model_path);
    const std::int64_t layers_key =
        gguf_find_key(meta.get(), (architecture_ + ".block_count").c_str());
    const std::uint32_t n_layer =
        layers_key >= 0 && gguf_get_kv_type(meta.get(), layers_key) == GGUF_TYPE_UINT32
            ? gguf_get_val_u32(meta.get(), layers_key)
            : 0;  // unknown: every block (what the executor loaded has one)
    const std::uint32_t blocks = options_.blocks ? options_.blocks : train_blocks(n_layer);
    const std::uint32_t first_block = n_layer > blocks ? n_layer - blocks : 0;
    for (ggml_tensor* t = ggml_get_first_tensor(shapes.get()); t;
         t = ggml_get_next_tensor(shapes.get(), t)) {
      if (is_block_matrix(t->name, options_.matrices, first_block)) wanted_.push_back(t->name);
    }
    need = f32_need(shapes.get());
  }
  if (wanted_.empty()) throw std::invalid_argument("the model has none of the matrices to train");
  // Removed once loaded: the copy is read whole, not mapped.
  const ScratchFile copy =
      need.convert ? write_f32_copy(model_path, need, options_.scratch_dir, options_.threads)
                   : ScratchFile();
  const std::string& load_path = need.convert ? copy.path() : model_path;

  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  mp.load_mode = LLAMA_LOAD_MODE_NONE;  // the optimizer writes the weights
  model_.reset(llama_model_load_from_file(load_path.c_str(), mp));
  if (!model_) throw std::runtime_error("llama.cpp could not load " + load_path);
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = kWindow;
  cp.n_batch = kWindow;
  cp.n_ubatch = kWindow;
  cp.n_threads = options_.threads;
  cp.n_threads_batch = options_.threads;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;  // no backward pass
  cp.type_k = GGML_TYPE_F32;                            // the backward pass has no F16 OUT_PROD
  cp.type_v = GGML_TYPE_F32;
  context_.reset(llama_init_from_model(model_.get(), cp));
  if (!context_) throw std::runtime_error("llama.cpp could not make a training context");
  window_ = llama_n_ctx(context_.get());

  llama_opt_params op{};
  op.n_ctx_train = 0;  // the context's
  op.param_filter = &Distillation::select;
  op.param_filter_ud = this;
  op.get_opt_pars = &optimizer_params;
  op.get_opt_pars_ud = &options_.learning_rate;
  op.optimizer_type = GGML_OPT_OPTIMIZER_TYPE_ADAMW;
  llama_opt_init(context_.get(), model_.get(), op);
  if (trained_.size() != wanted_.size()) {
    throw std::runtime_error("llama.cpp trains " + std::to_string(trained_.size()) + " of the " +
                             std::to_string(wanted_.size()) + " matrices asked for");
  }
  for (Trained& t : trained_) {
    t.before.resize(static_cast<std::size_t>(ggml_nelements(t.tensor)));
    ggml_backend_tensor_get(t.tensor, t.before.data(), 0, ggml_nbytes(t.tensor));
  }
  progress_.total = options_.steps + static_cast<std::uint32_t>(trained_.size());
}

Distillation::~Distillation() = default;

bool Distillation::select(const ggml_tensor* tensor, void* self) {
  auto* d = static_cast<Distillation*>(self);
  const std::string name = tensor->name;
  bool wanted = false;
  for (const std::string& w : d->wanted_) wanted = wanted || w == name;
  if (!wanted) return false;
  Trained t;
  // llama.cpp marks the tensor itself trainable: the pointer stays valid
  // as long as the model, and the optimizer updates it in place.
  t.tensor = const_cast<ggml_tensor*>(tensor);
  t.name = name;
  t.cols = tensor->ne[0];
  t.rows = tensor->ne[1];
  d->trained_.push_back(std::move(t));
  return true;
}

DistillProgress Distillation::step() {
  if (done()) throw std::logic_error("the distillation is done");
  if (progress_.done < options_.steps) {
    train_step();
  } else {
    factor(trained_[progress_.done - options_.steps]);
  }
  ++progress_.done;
  return progress_;
}

void Distillation::train_step() {
  // One window of the packed texts, taken round the stream: a short set of
  // memories fills it several times over, a long one is covered window by
  // window across steps.
  std::unique_ptr<ggml_opt_dataset, DatasetFree> data(
      ggml_opt_dataset_init(GGML_TYPE_I32, GGML_TYPE_I32, window_, window_, 1, 1));
  auto* tokens = static_cast<llama_token*>(ggml_opt_dataset_data(data.get())->data);
  auto* labels = static_cast<llama_token*>(ggml_opt_dataset_labels(data.get())->data);
  for (std::uint32_t i = 0; i < window_; ++i) {
    tokens[i] = stream_[(next_window_ + i) % stream_.size()];
    labels[i] = stream_[(next_window_ + i + 1) % stream_.size()];
  }
  next_window_ = (next_window_ + window_) % stream_.size();
  std::unique_ptr<ggml_opt_result, ResultFree> result(ggml_opt_result_init());
  llama_opt_epoch(context_.get(), data.get(), result.get(), nullptr, /*idata_split=*/1, nullptr,
                  nullptr);
  double loss = 0, uncertainty = 0;
  ggml_opt_result_loss(result.get(), &loss, &uncertainty);
  if (!std::isfinite(loss)) {
    throw std::runtime_error("training diverged (the loss is not finite); try a lower rate");
  }
  progress_.loss = static_cast<float>(loss);
}

void Distillation::factor(Trained& t) {
  std::vector<float> delta(t.before.size());
  ggml_backend_tensor_get(t.tensor, delta.data(), 0, ggml_nbytes(t.tensor));
  for (std::size_t i = 0; i < delta.size(); ++i) delta[i] -= t.before[i];
  std::vector<float>().swap(t.before);
  t.factors = truncated_svd(delta, t.rows, t.cols, options_.rank);
}

std::string Distillation::adapter(const std::string& name) const {
  if (!done()) throw std::logic_error("the distillation is not done");
  GgufPtr g(gguf_init_empty());
  gguf_set_val_str(g.get(), "general.type", "adapter");
  gguf_set_val_str(g.get(), "general.architecture", architecture_.c_str());
  gguf_set_val_str(g.get(), "general.name", name.c_str());
  gguf_set_val_str(g.get(), "adapter.type", "lora");
  // Every pair has the same rank unless a matrix is smaller than it; alpha
  // = rank makes scale 1 add exactly B·A (llama.cpp scales by alpha/rank).
  const std::uint32_t rank = trained_.front().factors.rank;
  gguf_set_val_f32(g.get(), "adapter.lora.alpha", static_cast<float>(rank));
  gguf_set_val_str(g.get(), "memos.base_model.sha256", base_model_.c_str());
  ggml_init_params ip{ggml_tensor_overhead() * (2 * trained_.size() + 1), nullptr,
                      /*no_alloc=*/true};
  GgmlPtr decl(ggml_init(ip));
  std::vector<const void*> data;
  for (const Trained& t : trained_) {
    if (t.factors.rank != rank) {
      throw std::logic_error("a matrix smaller than the rank: " + t.name);
    }
    ggml_tensor* a = ggml_new_tensor_2d(decl.get(), GGML_TYPE_F32, t.cols, rank);
    ggml_set_name(a, (t.name + ".lora_a").c_str());
    gguf_add_tensor(g.get(), a);
    data.push_back(t.factors.a.data());
    ggml_tensor* b = ggml_new_tensor_2d(decl.get(), GGML_TYPE_F32, rank, t.rows);
    ggml_set_name(b, (t.name + ".lora_b").c_str());
    gguf_add_tensor(g.get(), b);
    data.push_back(t.factors.b.data());
  }
  return gguf_bytes(g.get(), data);
}

}  // namespace memos::llama_exec
