using System;
using System.Collections.Generic;
using System.Text;
using System.Text.RegularExpressions;

namespace TransformerGen.Tokenizers.Chat;

/// <summary>The chat layouts <see cref="ChatTemplate"/> recognises.</summary>
public enum ChatTemplateStyle
{
    /// <summary><c>&lt;|im_start|&gt;role\n…&lt;|im_end|&gt;\n</c> (Qwen2/2.5-Instruct, SmolLM2-Instruct).</summary>
    ChatMl,

    /// <summary><c>&lt;|user|&gt;\n…&lt;/s&gt;\n&lt;|assistant|&gt;\n</c> (Zephyr, TinyLlama-Chat).</summary>
    Zephyr,

    /// <summary><c>&lt;s&gt;[INST] &lt;&lt;SYS&gt;&gt;\n…\n&lt;&lt;/SYS&gt;&gt;\n\n… [/INST] … &lt;/s&gt;</c> (Llama-2-Chat).</summary>
    Llama2,
}

/// <summary>
/// A model's chat template, recognised from the Jinja source in tokenizer_config.json by its markers and
/// reproduced in C#. Jinja is not evaluated: templates of other layouts are not recognised (see
/// <see cref="Recognize"/>), and the recognised ones are written out as transformers'
/// <c>apply_chat_template</c> renders them (Jinja with <c>trim_blocks</c> and <c>lstrip_blocks</c>) for
/// system, user and assistant messages without tools.
/// </summary>
/// <remarks>
/// The text holds the special tokens the template writes (Llama-2's <c>&lt;s&gt;</c>), so encode it with
/// <c>addSpecialTokens: false</c>, as <c>apply_chat_template(tokenize=True)</c> does.
/// </remarks>
public sealed partial class ChatTemplate
{
    private ChatTemplate(ChatTemplateStyle style, string? defaultSystemPrompt, string bosToken, string eosToken)
    {
        Style = style;
        DefaultSystemPrompt = defaultSystemPrompt;
        BosToken = bosToken;
        EosToken = eosToken;
    }

    /// <summary>The layout.</summary>
    public ChatTemplateStyle Style { get; }

    /// <summary>The system message the template puts first when the conversation has none (Qwen2's "You are a helpful assistant."), or null.</summary>
    public string? DefaultSystemPrompt { get; }

    /// <summary>The text that ends an assistant turn, at which generation stops: <c>&lt;|im_end|&gt;</c> for ChatML, the EOS token otherwise.</summary>
    public string EndOfTurn => Style == ChatTemplateStyle.ChatMl ? ImEnd : EosToken;

    private string BosToken { get; }

    private string EosToken { get; }

    private const string ImStart = "<|im_start|>";
    private const string ImEnd = "<|im_end|>";

    /// <summary>Creates a template of a known layout directly.</summary>
    /// <param name="style">The layout.</param>
    /// <param name="defaultSystemPrompt">ChatML only: the system message put first when the conversation has none.</param>
    /// <param name="bosToken">The BOS text Llama-2's layout writes (<c>&lt;s&gt;</c>).</param>
    /// <param name="eosToken">The EOS text Zephyr's and Llama-2's layouts write (<c>&lt;/s&gt;</c>).</param>
    public static ChatTemplate Create(ChatTemplateStyle style, string? defaultSystemPrompt = null, string bosToken = "<s>", string eosToken = "</s>")
    {
        ArgumentNullException.ThrowIfNull(bosToken);
        ArgumentNullException.ThrowIfNull(eosToken);
        return new ChatTemplate(style, style == ChatTemplateStyle.ChatMl ? defaultSystemPrompt : null, bosToken, eosToken);
    }

    /// <summary>
    /// Recognises a Jinja chat template by its markers: ChatML (<c>&lt;|im_start|&gt;</c>, <c>&lt;|im_end|&gt;</c>),
    /// Zephyr (<c>&lt;|user|&gt;\n</c>, <c>&lt;|assistant|&gt;</c>, <c>eos_token</c>), Llama-2 (<c>[INST]</c>,
    /// <c>[/INST]</c>, <c>&lt;&lt;SYS&gt;&gt;</c>).
    /// </summary>
    /// <param name="jinja">The template source (tokenizer_config.json <c>chat_template</c>), or null.</param>
    /// <param name="bosToken">The tokenizer's BOS text.</param>
    /// <param name="eosToken">The tokenizer's EOS text.</param>
    /// <param name="reason">Why the result is null, in words a program can print; null when a template is returned.</param>
    public static ChatTemplate? Recognize(string? jinja, string? bosToken, string? eosToken, out string? reason)
    {
        reason = null;
        if (string.IsNullOrWhiteSpace(jinja))
        {
            reason = "The folder has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja): a base model, or one meant for plain text.";
            return null;
        }

        if (Has(jinja, ImStart) && Has(jinja, ImEnd) && Has(jinja, ImStart + "assistant\n"))
        {
            return new ChatTemplate(ChatTemplateStyle.ChatMl, FindChatMlDefaultSystemPrompt(jinja), bosToken ?? "", eosToken ?? ImEnd);
        }

        // Phi-3 also writes <|user|>\n but ends turns with <|end|>, not the EOS token.
        if (Has(jinja, "<|user|>\n") && Has(jinja, "<|assistant|>") && jinja.Contains("eos_token", StringComparison.Ordinal) && !Has(jinja, "<|end|>"))
        {
            return eosToken is null
                ? Unrecognized("the Zephyr chat template writes the EOS token, and the tokenizer names none", out reason)
                : new ChatTemplate(ChatTemplateStyle.Zephyr, null, bosToken ?? "", eosToken);
        }

        if (Has(jinja, "[INST]") && Has(jinja, "[/INST]") && Has(jinja, "<<SYS>>\n"))
        {
            return bosToken is null || eosToken is null
                ? Unrecognized("the Llama-2 chat template writes the BOS and EOS tokens, and the tokenizer does not name both", out reason)
                : new ChatTemplate(ChatTemplateStyle.Llama2, null, bosToken, eosToken);
        }

        string start = jinja.Length <= 80 ? jinja : jinja[..80] + "…";
        return Unrecognized(
            $"the chat template is none of the layouts recognised without a Jinja engine (ChatML, Zephyr/TinyLlama, Llama-2 [INST]); it begins: {start.ReplaceLineEndings(" ")}",
            out reason);
    }

    /// <summary>Writes a conversation out as the model's chat template does.</summary>
    /// <param name="messages">The messages in order; roles are "system", "user" and "assistant".</param>
    /// <param name="addGenerationPrompt">End with the opening of an assistant turn (ChatML, Zephyr). Llama-2's template has none and ignores it.</param>
    /// <exception cref="ArgumentException">A role other than system, user, assistant; or, for Llama-2, roles that do not alternate user/assistant (the template raises the same error).</exception>
    public string Format(IReadOnlyList<(string Role, string Content)> messages, bool addGenerationPrompt = true)
    {
        ArgumentNullException.ThrowIfNull(messages);
        foreach ((string role, string content) in messages)
        {
            if (role is not ("system" or "user" or "assistant") || content is null)
            {
                throw new ArgumentException($"Chat messages have the roles system, user and assistant and a content; got role '{role}'.", nameof(messages));
            }
        }

        return Style switch
        {
            ChatTemplateStyle.ChatMl => FormatChatMl(messages, addGenerationPrompt),
            ChatTemplateStyle.Zephyr => FormatZephyr(messages, addGenerationPrompt),
            _ => FormatLlama2(messages),
        };
    }

    // {% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n…<|im_end|>\n' }}{% endif %}
    // {{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}
    // {% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
    private string FormatChatMl(IReadOnlyList<(string Role, string Content)> messages, bool addGenerationPrompt)
    {
        var text = new StringBuilder();
        if (DefaultSystemPrompt is not null && messages.Count > 0 && messages[0].Role != "system")
        {
            text.Append(ImStart).Append("system\n").Append(DefaultSystemPrompt).Append(ImEnd).Append('\n');
        }

        foreach ((string role, string content) in messages)
        {
            text.Append(ImStart).Append(role).Append('\n').Append(content).Append(ImEnd).Append('\n');
        }

        if (addGenerationPrompt)
        {
            text.Append(ImStart).Append("assistant\n");
        }

        return text.ToString();
    }

    // {% for message in messages %}
    // {% if message['role'] == 'user' %}
    // {{ '<|user|>\n' + message['content'] + eos_token }}
    // … the same for system and assistant …
    // {% if loop.last and add_generation_prompt %}
    // {{ '<|assistant|>' }}
    // {% endif %}
    // {% endfor %}
    // trim_blocks drops the newline after each {% %} tag; the newline after each {{ }} stays.
    private string FormatZephyr(IReadOnlyList<(string Role, string Content)> messages, bool addGenerationPrompt)
    {
        var text = new StringBuilder();
        foreach ((string role, string content) in messages)
        {
            text.Append("<|").Append(role).Append("|>\n").Append(content).Append(EosToken).Append('\n');
        }

        if (addGenerationPrompt && messages.Count > 0)
        {
            text.Append("<|assistant|>\n");
        }

        return text.ToString();
    }

    // A first system message goes inside the first [INST] block between <<SYS>> markers; user turns are
    // bos_token + '[INST] ' + content.strip() + ' [/INST]', assistant turns ' ' + content.strip() + ' ' + eos_token.
    private string FormatLlama2(IReadOnlyList<(string Role, string Content)> messages)
    {
        int first = 0;
        string? system = null;
        if (messages.Count > 0 && messages[0].Role == "system")
        {
            system = messages[0].Content;
            first = 1;
        }

        var text = new StringBuilder();
        for (int i = first; i < messages.Count; i++)
        {
            (string role, string content) = messages[i];
            bool userTurn = (i - first) % 2 == 0;
            if ((role == "user") != userTurn || role == "system")
            {
                throw new ArgumentException("Conversation roles must alternate user/assistant/user/assistant/...", nameof(messages));
            }

            if (i == first && system is not null)
            {
                content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content;
            }

            if (role == "user")
            {
                text.Append(BosToken).Append("[INST] ").Append(StripLikePython(content)).Append(" [/INST]");
            }
            else
            {
                text.Append(' ').Append(StripLikePython(content)).Append(' ').Append(EosToken);
            }
        }

        return text.ToString();
    }

    // Python's str.strip() removes Unicode whitespace, as string.Trim() does.
    private static string StripLikePython(string text) => text.Trim();

    // Qwen2: "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}" — a literal whose whole text is the system turn.
    private static string? FindChatMlDefaultSystemPrompt(string jinja)
    {
        Match match = DefaultSystemTurn().Match(jinja);
        return match.Success ? UnescapeJinjaString(match.Groups["prompt"].Value) : null;
    }

    [GeneratedRegex(@"(?<quote>['""])<\|im_start\|>system(?:\\n|\n)(?<prompt>(?:(?!\k<quote>)[^\\]|\\.)*?)<\|im_end\|>(?:\\n|\n)?\k<quote>")]
    private static partial Regex DefaultSystemTurn();

    private static string UnescapeJinjaString(string literal)
    {
        var text = new StringBuilder(literal.Length);
        for (int i = 0; i < literal.Length; i++)
        {
            if (literal[i] == '\\' && i + 1 < literal.Length)
            {
                i++;
                text.Append(literal[i] switch { 'n' => '\n', 't' => '\t', 'r' => '\r', char other => other });
            }
            else
            {
                text.Append(literal[i]);
            }
        }

        return text.ToString();
    }

    // Templates write a newline inside a Jinja string literal as the escape \n, or now and then as a real newline.
    private static bool Has(string jinja, string fragment) =>
        jinja.Contains(fragment, StringComparison.Ordinal)
        || (fragment.Contains('\n') && jinja.Contains(fragment.Replace("\n", "\\n", StringComparison.Ordinal), StringComparison.Ordinal));

    private static ChatTemplate? Unrecognized(string why, out string reason)
    {
        reason = char.ToUpperInvariant(why[0]) + why[1..] + ".";
        return null;
    }
}
