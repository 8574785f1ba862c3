using System;

namespace TransformerGen.Generator
{
    /// <summary>
    /// What a Hugging Face family's files may hold besides the model's parameter names, for the compile-time check of
    /// built-in weights: the optional base-model prefix, legacy LayerNorm names, and tensors the loader skips (buffers,
    /// unused heads, a tied head's copy). The runtime's CheckpointFamilyRules decides for good when the file is loaded
    /// (it also checks the skipped tensors' shapes); this is the early, located warning at the Weights argument.
    /// </summary>
    internal sealed class FamilyFileNames(int kind, bool tied)
    {
        private string Prefix => kind switch
        {
            FamilySpec.Gpt2 => "transformer.", FamilySpec.Bert => "bert.", FamilySpec.Roberta => "roberta.", FamilySpec.DistilBert => "distilbert.",
            FamilySpec.MPNet => "mpnet.",
            _ => "model.", // Llama, Qwen2, Qwen3
        };

        /// <summary>The name the model gives the tensor a file calls <paramref name="name"/>.</summary>
        public string Key(string name)
        {
            if (name.EndsWith("LayerNorm.gamma", StringComparison.Ordinal)) name = name.Substring(0, name.Length - "gamma".Length) + "weight";
            else if (name.EndsWith("LayerNorm.beta", StringComparison.Ordinal)) name = name.Substring(0, name.Length - "beta".Length) + "bias";
            bool prefixed = name.StartsWith(Prefix, StringComparison.Ordinal);
            // GPT-2 and BERT-like models carry no prefix; Llama, Qwen2, Qwen3 and Phi-3 models carry "model." on everything but lm_head.
            if (kind is FamilySpec.Gpt2 or FamilySpec.Bert or FamilySpec.Roberta or FamilySpec.DistilBert or FamilySpec.MPNet) return prefixed ? name.Substring(Prefix.Length) : name;
            return prefixed || name.StartsWith("lm_head.", StringComparison.Ordinal) ? name : Prefix + name;
        }

        /// <summary>Whether the loader skips a tensor of this name (it checks the shape then).</summary>
        public bool MaySkip(string name)
        {
            string key = Key(name);
            return kind switch
            {
                FamilySpec.Gpt2 => key.EndsWith(".attn.bias", StringComparison.Ordinal) || key.EndsWith(".attn.masked_bias", StringComparison.Ordinal)
                    || (tied && key == "lm_head.weight"),
                FamilySpec.Bert => key == "embeddings.position_ids" || key.StartsWith("pooler.", StringComparison.Ordinal) || key.StartsWith("cls.", StringComparison.Ordinal)
                    || name.StartsWith("cls.", StringComparison.Ordinal),
                FamilySpec.Roberta or FamilySpec.MPNet => key == "embeddings.position_ids" || key.StartsWith("pooler.", StringComparison.Ordinal) || key.StartsWith("lm_head.", StringComparison.Ordinal),
                FamilySpec.DistilBert => key == "embeddings.position_ids" || key.StartsWith("vocab_", StringComparison.Ordinal),
                _ => key.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal) || (tied && key == "lm_head.weight"),
            };
        }
    }
}
