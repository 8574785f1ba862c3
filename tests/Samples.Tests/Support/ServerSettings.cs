using System.Collections.Generic;
using Microsoft.Extensions.Configuration;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>
/// A sample server's options bound from settings as its host binds the command line's, for tests that build its engine
/// directly to see what it refuses at start. tests/EmbeddingServer.Tests links this file.
/// </summary>
public static class ServerSettings
{
    /// <summary>The options for the model folder <paramref name="model"/> and <paramref name="settings"/> (<c>max-tokens</c> → "0", …).</summary>
    public static TOptions Bind<TOptions>(string model, IReadOnlyDictionary<string, string>? settings = null)
    {
        var values = new Dictionary<string, string?> { ["model"] = model };
        foreach ((string key, string value) in settings ?? new Dictionary<string, string>()) values[key] = value;
        return new ConfigurationBuilder().AddInMemoryCollection(values).Build().Get<TOptions>()!;
    }
}
