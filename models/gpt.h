// GPT-style causal language model (GPT-2 layout, pre-LayerNorm):
//
//   h      = ln_f(blocks(drop(wte[idx] + wpe[0..T))))     blocks: causal self-attention + MLP
//   logits = h @ wte.weight^T                             output tied to the token embedding
//
// Position i's logits depend on tokens <= i only (dense and causal SMYRF attention alike).
//
// Parameter names follow GPT-2's PyTorch state_dict: transformer.wte.weight,
// transformer.wpe.weight, transformer.h.<i>.ln_1.{weight,bias},
// transformer.h.<i>.attn.{q,k,v,out}_proj.{weight,bias}, transformer.h.<i>.ln_2.*,
// transformer.h.<i>.mlp.c_fc.*, transformer.h.<i>.mlp.c_proj.*, transformer.ln_f.* (Linear weights
// (out, in) as torch.nn.Linear; the tied head has no own key).
#pragma once
#include "models/transformer.h"

namespace smyrf::models {

class GPT : public TransformerLM {
 public:
  explicit GPT(const ModelConfig& config, Generator* init_gen = nullptr)
      : TransformerLM(config, /*causal=*/true, init_gen) {}
  std::string name() const override { return "GPT"; }
};

}  // namespace smyrf::models
