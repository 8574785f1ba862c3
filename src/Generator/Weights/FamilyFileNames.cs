using System;

namespace TransformerGen.Generator
{
    /// <summary>
    /// What a Hugging Face family's files may hold besides the model's parameter names, for the compile-time check of
    /// built-in weights: the optional base-model prefix, legacy LayerNorm names, and tensors the loader skips (buffers,
    /// unused heads, tied copies). Names are compared by key, the name without the prefix, on both sides, as the runtime's
    /// CheckpointFamilyRules compares them; those rules decide for good when the file is loaded (they also check the
    /// skipped tensors' shapes); this is the early, located warning at the Weights argument.
    /// </summary>
    internal sealed class FamilyFileNames(int kind, bool tied)
    {
        private string Prefix => kind switch
        {
            FamilySpec.Gpt2 or FamilySpec.T5 => "transformer.",
            FamilySpec.Bert or FamilySpec.NomicBert => "bert.",
            FamilySpec.Roberta => "roberta.",
            FamilySpec.DistilBert => "distilbert.",
            FamilySpec.MPNet => "mpnet.",
            FamilySpec.Electra => "electra.",
            _ => "model.", // Llama, Qwen2, Qwen3, Phi-3, Gemma 3, ModernBERT, Marian, BART, mBART, M2M100
        };

        /// <summary>
        /// The key of a name, the model's or a file's: without the base-model prefix; in BERT's files, TF-converted
        /// LayerNorm <c>gamma</c>/<c>beta</c> as <c>weight</c>/<c>bias</c>.
        /// </summary>
        public string Key(string name)
        {
            if (kind == FamilySpec.Bert)
            {
                if (name.EndsWith("LayerNorm.gamma", StringComparison.Ordinal)) name = name.Substring(0, name.Length - "gamma".Length) + "weight";
                else if (name.EndsWith("LayerNorm.beta", StringComparison.Ordinal)) name = name.Substring(0, name.Length - "beta".Length) + "bias";
            }
            return name.StartsWith(Prefix, StringComparison.Ordinal) ? name.Substring(Prefix.Length) : name;
        }

        /// <summary>Whether the loader skips a file's tensor of this name that is none of the model's (it checks the shape then).</summary>
        public bool MaySkip(string name)
        {
            string key = Key(name);
            return kind switch
            {
                FamilySpec.Gpt2 => key.EndsWith(".attn.bias", StringComparison.Ordinal) || key.EndsWith(".attn.masked_bias", StringComparison.Ordinal)
                    || (tied && key == "lm_head.weight"),
                FamilySpec.Bert => key == "embeddings.position_ids" || key.StartsWith("pooler.", StringComparison.Ordinal) || key.StartsWith("cls.", StringComparison.Ordinal),
                FamilySpec.NomicBert => key.StartsWith("pooler.", StringComparison.Ordinal) || key.StartsWith("cls.", StringComparison.Ordinal),
                FamilySpec.Roberta or FamilySpec.MPNet => key == "embeddings.position_ids" || key.StartsWith("pooler.", StringComparison.Ordinal) || key.StartsWith("lm_head.", StringComparison.Ordinal),
                FamilySpec.DistilBert => key == "embeddings.position_ids" || key.StartsWith("vocab_", StringComparison.Ordinal),
                // ElectraForPreTraining's discriminator head, ElectraForMaskedLM's generator head.
                FamilySpec.Electra => key == "embeddings.position_ids" || key.StartsWith("discriminator_predictions.", StringComparison.Ordinal)
                    || key.StartsWith("generator_predictions.", StringComparison.Ordinal) || key.StartsWith("generator_lm_head.", StringComparison.Ordinal),
                // The BART-shaped encoder–decoders and T5 read one table, "shared": older files keep copies under its other names.
                FamilySpec.Marian => SharedTableCopy(key) || key is "encoder.embed_positions.weight" or "decoder.embed_positions.weight",
                FamilySpec.Bart or FamilySpec.MBart or FamilySpec.M2M100 => SharedTableCopy(key),
                FamilySpec.T5 => SharedTableCopy(key) || key == "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
                FamilySpec.Phi3 => tied && key == "lm_head.weight",
                // ModernBertForMaskedLM's head (head.dense, head.norm) and its decoder (bias; the weight is the token table).
                FamilySpec.ModernBert => key.StartsWith("head.", StringComparison.Ordinal) || key.StartsWith("decoder.", StringComparison.Ordinal),
                _ => key.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal) || (tied && key == "lm_head.weight"), // Llama, Qwen2, Qwen3
            };
        }

        private bool SharedTableCopy(string key) =>
            key is "encoder.embed_tokens.weight" or "decoder.embed_tokens.weight" || (tied && key == "lm_head.weight");
    }
}
