using Microsoft.Extensions.Configuration;
using TransformerGen.Samples.Serving;

namespace TransformerGen.ChatServer;

/// <summary>
/// The chat server's settings (with the model folder, name, threads and weight type every sample server has), bound from
/// ASP.NET Core's configuration: <c>--model folder --max-tokens 256</c> on the command line, environment variables or
/// appsettings.json.
/// </summary>
public sealed class ServerOptions : ModelServerOptions
{
    /// <summary>The tokens a step runs when not set: a 256-token prompt chunk holds up the running replies' next tokens by one such pass.</summary>
    public const int DefaultMaxStepTokens = 256;

    /// <summary>Conversations generating at once: 1 to the model's Batch (its cache slots); Batch when not set. The others wait in arrival order.</summary>
    [ConfigurationKeyName("max-sequences")]
    public int? MaxSequences { get; set; }

    /// <summary>
    /// Tokens one step runs at most: every running reply's next token, then chunks of waiting prompts (a long prompt goes
    /// in over several steps). From <c>--max-sequences</c> to the model's SeqLen; <see cref="DefaultMaxStepTokens"/>
    /// (or SeqLen if less) when not set.
    /// </summary>
    [ConfigurationKeyName("max-step-tokens")]
    public int? MaxStepTokens { get; set; }

    /// <summary>
    /// Whether a request may continue from what a free cache slot holds (<see cref="TransformerGen.Serving.DecoderBatcherOptions.ReusePrefixes"/>).
    /// Default true. Slots are shared by all clients, so a prompt that begins as another client's did gets its first token
    /// sooner; a server whose clients must not learn that from timing turns it off.
    /// </summary>
    [ConfigurationKeyName("reuse-prefixes")]
    public bool ReusePrefixes { get; set; } = true;

    /// <summary>A reply's length limit in tokens when a request gives no <c>max_tokens</c>. Default 512.</summary>
    [ConfigurationKeyName("max-tokens")]
    public int MaxTokens { get; set; } = 512;

    /// <summary>Checks the values that need no model; throws <see cref="StartupException"/> naming the first wrong one.</summary>
    public void Validate(string repository)
    {
        ValidateModel(repository);
        if (MaxSequences < 1) throw new StartupException($"--max-sequences {MaxSequences}: at least 1.");
        if (MaxStepTokens < 1) throw new StartupException($"--max-step-tokens {MaxStepTokens}: at least 1.");
        if (MaxTokens < 1) throw new StartupException($"--max-tokens {MaxTokens}: at least 1.");
    }
}
