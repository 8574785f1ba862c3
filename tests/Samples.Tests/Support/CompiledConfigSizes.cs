using System.Text.Json;
using Xunit;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>That a sample's embedded config.json is the one its model class was compiled from: the sizes it gives are the class's constants.</summary>
internal static class CompiledConfigSizes
{
    /// <summary>
    /// Asserts that <paramref name="compiledConfig"/>'s vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
    /// num_key_value_heads, intermediate_size and head_dim are <paramref name="compiled"/> (the class's Vocab, DModel,
    /// Layers, Heads, KvHeads, DFF, HeadDim) and its model_type is <paramref name="modelType"/>.
    /// </summary>
    public static JsonElement Assert(string compiledConfig, string modelType, (int Vocab, int DModel, int Layers, int Heads, int KvHeads, int DFF, int HeadDim) compiled)
    {
        JsonElement root = JsonDocument.Parse(compiledConfig).RootElement.Clone();
        Xunit.Assert.Equal(modelType, root.GetProperty("model_type").GetString());
        Xunit.Assert.Equal(compiled,
            (root.GetProperty("vocab_size").GetInt32(), root.GetProperty("hidden_size").GetInt32(), root.GetProperty("num_hidden_layers").GetInt32(),
             root.GetProperty("num_attention_heads").GetInt32(), root.GetProperty("num_key_value_heads").GetInt32(), root.GetProperty("intermediate_size").GetInt32(),
             root.GetProperty("head_dim").GetInt32()));
        return root;
    }
}
