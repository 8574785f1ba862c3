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

    /// <summary>
    /// <c>&lt;bos&gt;&lt;start_of_turn&gt;user\n…&lt;end_of_turn&gt;\n&lt;start_of_turn&gt;model\n…&lt;end_of_turn&gt;\n</c> (Gemma 3's -it models,
    /// gemma-3-270m-it and gemma-3-1b-it among them; Gemma 1 and 2, which refuse a system message).
    /// </summary>
    Gemma,

    /// <summary>
    /// <c>&lt;|begin_of_text|&gt;&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\n…&lt;|eot_id|&gt;</c> (Llama 3 Instruct; from Llama 3.1 on,
    /// a system turn always comes first, headed by its knowledge cut-off and the day's date).
    /// </summary>
    Llama3,
}

/// <summary>
/// A model's chat template, recognised from the Jinja source in tokenizer_config.json by its markers and
/// reproduced in C#. Jinja is not evaluated: templates of other layouts are not recognised (see
/// <see cref="Recognize"/>), and the recognised ones are written out as transformers'
/// <c>apply_chat_template</c> renders them (Jinja with <c>trim_blocks</c> and <c>lstrip_blocks</c>) for
/// system, user and assistant messages without tools.
/// </summary>
/// <remarks>
/// The text holds the special tokens the template writes (Llama-2's <c>&lt;s&gt;</c>, Gemma's <c>&lt;bos&gt;</c>), so encode it with
/// <c>addSpecialTokens: false</c>, as <c>apply_chat_template(tokenize=True)</c> does.
/// </remarks>
public sealed partial class ChatTemplate
{
    private ChatTemplate(ChatTemplateStyle style, string? defaultSystemPrompt, string bosToken, string eosToken, string? systemSeparator = null,
        Llama3SystemTurn? llama3System = null)
    {
        Style = style;
        DefaultSystemPrompt = defaultSystemPrompt;
        BosToken = bosToken;
        EosToken = eosToken;
        SystemSeparator = systemSeparator;
        _llama3System = llama3System;
    }

    // Llama 3.1 and later: the system turn every conversation starts with. DateString is the template's fixed date
    // ("26 Jul 2024"), or null where the template asks transformers' strftime_now for today's.
    private sealed record Llama3SystemTurn(string CutOff, string? DateString);

    private readonly Llama3SystemTurn? _llama3System;

    /// <summary>The layout.</summary>
    public ChatTemplateStyle Style { get; }

    /// <summary>The system message the template puts first when the conversation has none (Qwen2's "You are a helpful assistant."), or null.</summary>
    public string? DefaultSystemPrompt { get; }

    /// <summary>
    /// The text that ends an assistant turn, at which generation stops: <c>&lt;|im_end|&gt;</c> for ChatML,
    /// <c>&lt;end_of_turn&gt;</c> for Gemma, the EOS token otherwise. Generation stops at the EOS token too (Gemma 3's
    /// config.json lists both, <c>eos_token_id: [1, 106]</c>).
    /// </summary>
    public string EndOfTurn => Style switch
    {
        ChatTemplateStyle.ChatMl => ImEnd,
        ChatTemplateStyle.Gemma => GemmaEndOfTurn,
        ChatTemplateStyle.Llama3 => Llama3EndOfTurn,
        _ => EosToken,
    };

    /// <summary>
    /// The date a Llama 3.1-and-later template writes in its system turn ("Today Date: 07 Dec 2026"): the template's own
    /// when it fixes one (Llama 3.1's "26 Jul 2024"), else the day it was read, as transformers' <c>strftime_now("%d %b %Y")</c>
    /// gives it (see <see cref="WithDate"/>). Null for the other layouts.
    /// </summary>
    public string? DateString { get; private init; }

    /// <summary>The same template writing <paramref name="dateString"/> as the day's date (transformers' <c>date_string</c>).</summary>
    /// <exception cref="InvalidOperationException">The layout writes no date (anything but Llama 3.1 and later).</exception>
    public ChatTemplate WithDate(string dateString)
    {
        ArgumentNullException.ThrowIfNull(dateString);
        if (_llama3System is null) throw new InvalidOperationException($"The {Style} chat template writes no date.");
        return new ChatTemplate(Style, DefaultSystemPrompt, BosToken, EosToken, SystemSeparator, _llama3System) { DateString = dateString };
    }

    private string BosToken { get; }

    private string EosToken { get; }

    // Gemma only: what follows the system message's text where the template puts it at the head of the first user
    // turn (Gemma 3's "\n\n"), or null when the template refuses a system message (Gemma 1 and 2).
    private string? SystemSeparator { get; }

    private const string ImStart = "<|im_start|>";
    private const string ImEnd = "<|im_end|>";
    private const string GemmaStartOfTurn = "<start_of_turn>";
    private const string GemmaEndOfTurn = "<end_of_turn>";
    private const string GemmaSystemRefusal = "System role not supported";
    private const string Llama3StartHeader = "<|start_header_id|>", Llama3EndHeader = "<|end_header_id|>", Llama3EndOfTurn = "<|eot_id|>";
    private const string RolesMustAlternate = "Conversation roles must alternate user/assistant/user/assistant/...";

    /// <summary>Creates a template of a known layout directly.</summary>
    /// <param name="style">The layout. <see cref="ChatTemplateStyle.Gemma"/> is Gemma 3's, which puts a system message at the head of the first user turn.</param>
    /// <param name="defaultSystemPrompt">ChatML only: the system message put first when the conversation has none.</param>
    /// <param name="bosToken">The BOS text Llama-2's and Gemma's layouts write; null for the layout's own (<c>&lt;s&gt;</c>, Gemma <c>&lt;bos&gt;</c>).</param>
    /// <param name="eosToken">The EOS text Zephyr's and Llama-2's layouts write; null for the layout's own (<c>&lt;/s&gt;</c>, Gemma <c>&lt;eos&gt;</c>).</param>
    public static ChatTemplate Create(ChatTemplateStyle style, string? defaultSystemPrompt = null, string? bosToken = null, string? eosToken = null)
    {
        bool gemma = style == ChatTemplateStyle.Gemma;
        return new ChatTemplate(
            style, style == ChatTemplateStyle.ChatMl ? defaultSystemPrompt : null,
            bosToken ?? (gemma ? "<bos>" : "<s>"), eosToken ?? (gemma ? "<eos>" : "</s>"), gemma ? "\n\n" : null);
    }

    /// <summary>
    /// Recognises a Jinja chat template by its markers: ChatML (<c>&lt;|im_start|&gt;</c>, <c>&lt;|im_end|&gt;</c>),
    /// Zephyr (<c>&lt;|user|&gt;\n</c>, <c>&lt;|assistant|&gt;</c>, <c>eos_token</c>), Llama-2 (<c>[INST]</c>,
    /// <c>[/INST]</c>, <c>&lt;&lt;SYS&gt;&gt;</c>), Gemma (<c>&lt;start_of_turn&gt;</c>, <c>&lt;end_of_turn&gt;</c>,
    /// <c>&lt;start_of_turn&gt;model\n</c>; Gemma 3's <c>first_user_prefix</c>, whose separator is read from the template, or
    /// Gemma 1 and 2's "System role not supported").
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

        if (Has(jinja, GemmaStartOfTurn) && Has(jinja, GemmaEndOfTurn) && Has(jinja, GemmaStartOfTurn + "model\n"))
        {
            return RecognizeGemma(jinja, bosToken, eosToken, out reason);
        }

        if (Has(jinja, Llama3StartHeader) && Has(jinja, Llama3EndHeader) && Has(jinja, Llama3EndOfTurn))
        {
            return RecognizeLlama3(jinja, bosToken, eosToken, out reason);
        }

        string start = jinja.Length <= 80 ? jinja : jinja[..80] + "…";
        return Unrecognized(
            $"the chat template is none of the layouts recognised without a Jinja engine (ChatML, Zephyr/TinyLlama, Llama-2 [INST], Gemma <start_of_turn>, Llama 3 <|start_header_id|>); it begins: {start.ReplaceLineEndings(" ")}",
            out reason);
    }

    // Gemma 3: {{ bos_token }}, then a first system message's content + '\n\n' (first_user_prefix) at the head of the
    // first user turn. Gemma 1 and 2 raise 'System role not supported' instead.
    private static ChatTemplate? RecognizeGemma(string jinja, string? bosToken, string? eosToken, out string? reason)
    {
        reason = null;
        bool writesBos = jinja.Contains("bos_token", StringComparison.Ordinal);
        if (writesBos && bosToken is null)
        {
            return Unrecognized("the Gemma chat template writes the BOS token, and the tokenizer names none", out reason);
        }

        string? separator;
        if (jinja.Contains("first_user_prefix", StringComparison.Ordinal))
        {
            Match match = GemmaSystemPrefix().Match(jinja);
            if (!match.Success)
            {
                return Unrecognized("the Gemma chat template puts the system message before the first user turn (first_user_prefix) in a form not recognised", out reason);
            }

            separator = UnescapeJinjaString(match.Groups["separator"].Value);
        }
        else if (jinja.Contains(GemmaSystemRefusal, StringComparison.Ordinal))
        {
            separator = null;
        }
        else
        {
            return Unrecognized("the Gemma chat template handles a system message in a way not recognised (neither first_user_prefix nor 'System role not supported')", out reason);
        }

        return new ChatTemplate(ChatTemplateStyle.Gemma, null, writesBos ? bosToken! : "", eosToken ?? "", separator);
    }

    // Llama 3.0: {% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim
    // + '<|eot_id|>' %}, bos_token before the first. Llama 3.1 and later: bos_token, then always a system turn,
    // "Cutting Knowledge Date: December 2023\n" + "Today Date: " + date_string + "\n\n" + the first system message's
    // content | trim (or nothing), then every other message as 3.0 writes it. date_string is "26 Jul 2024" (3.1) or,
    // where the template calls strftime_now (3.2), today's date.
    private static ChatTemplate? RecognizeLlama3(string jinja, string? bosToken, string? eosToken, out string? reason)
    {
        reason = null;
        if (bosToken is null && jinja.Contains("bos_token", StringComparison.Ordinal))
        {
            return Unrecognized("the Llama 3 chat template writes the BOS token, and the tokenizer names none", out reason);
        }

        Llama3SystemTurn? system = null;
        string? date = null;
        if (jinja.Contains("Cutting Knowledge Date:", StringComparison.Ordinal))
        {
            Match cutOff = Llama3CutOff().Match(jinja);
            Match fixedDate = Llama3FixedDate().Match(jinja);
            if (!cutOff.Success || !fixedDate.Success)
            {
                return Unrecognized("the Llama 3 chat template writes its system turn's dates in a form not recognised", out reason);
            }

            bool today = jinja.Contains("strftime_now", StringComparison.Ordinal);
            system = new Llama3SystemTurn(UnescapeJinjaString(cutOff.Groups["date"].Value), today ? null : fixedDate.Groups["date"].Value);
            date = system.DateString ?? DateTime.Today.ToString("dd MMM yyyy", System.Globalization.CultureInfo.InvariantCulture);
        }

        return new ChatTemplate(ChatTemplateStyle.Llama3, null, bosToken ?? "", eosToken ?? Llama3EndOfTurn, llama3System: system) { DateString = date };
    }

    /// <summary>Writes a conversation out as the model's chat template does.</summary>
    /// <param name="messages">The messages in order; roles are "system", "user" and "assistant".</param>
    /// <param name="addGenerationPrompt">End with the opening of an assistant turn (ChatML, Zephyr, Gemma). Llama-2's template has none and ignores it.</param>
    /// <exception cref="ArgumentException">
    /// A role other than system, user, assistant; or, for Llama-2 and Gemma, roles that do not alternate user/assistant after
    /// a first system message, a system message to Gemma 1 or 2, or no message at all to Gemma (the templates raise the
    /// same errors).
    /// </exception>
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
            ChatTemplateStyle.Gemma => FormatGemma(messages, addGenerationPrompt),
            ChatTemplateStyle.Llama3 => FormatLlama3(messages, addGenerationPrompt),
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
                throw new ArgumentException(RolesMustAlternate, nameof(messages));
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

    // Gemma 3 (after JSON unescaping, trim_blocks and lstrip_blocks; every tag strips the whitespace around it):
    // {{ bos_token }}
    // {%- if messages[0]['role'] == 'system' -%} first_user_prefix = messages[0]['content'] + '\n\n', loop_messages = messages[1:]
    // {%- else -%} first_user_prefix = "", loop_messages = messages {%- endif -%}
    // {%- for message in loop_messages -%} roles alternate user/assistant, raise otherwise; assistant is written "model"
    //     {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}
    // {%- endfor -%}{%- if add_generation_prompt -%}{{'<start_of_turn>model\n'}}{%- endif -%}
    // The system message itself is not trimmed. Gemma 1 and 2 raise on a first system message and loop over all messages.
    // messages[0] of an empty conversation fails in Jinja; so does it here.
    private string FormatGemma(IReadOnlyList<(string Role, string Content)> messages, bool addGenerationPrompt)
    {
        if (messages.Count == 0)
        {
            throw new ArgumentException("The Gemma chat template reads messages[0]: a conversation needs a message.", nameof(messages));
        }

        int first = 0;
        string firstUserPrefix = "";
        if (messages[0].Role == "system")
        {
            firstUserPrefix = messages[0].Content + (SystemSeparator ?? throw new ArgumentException(GemmaSystemRefusal, nameof(messages)));
            first = 1;
        }

        var text = new StringBuilder(BosToken);
        for (int i = first; i < messages.Count; i++)
        {
            (string role, string content) = messages[i];
            bool userTurn = (i - first) % 2 == 0;
            if ((role == "user") != userTurn)
            {
                throw new ArgumentException(RolesMustAlternate, nameof(messages));
            }

            text.Append(GemmaStartOfTurn).Append(role == "assistant" ? "model" : role).Append('\n');
            if (i == first)
            {
                text.Append(firstUserPrefix);
            }

            text.Append(StripLikePython(content)).Append(GemmaEndOfTurn).Append('\n');
        }

        if (addGenerationPrompt)
        {
            text.Append(GemmaStartOfTurn).Append("model\n");
        }

        return text.ToString();
    }

    // See RecognizeLlama3. Roles need not alternate; a system message after the first is written as any other turn.
    private string FormatLlama3(IReadOnlyList<(string Role, string Content)> messages, bool addGenerationPrompt)
    {
        var text = new StringBuilder(BosToken);
        int first = 0;
        if (_llama3System is { } system)
        {
            string systemMessage = "";
            if (messages.Count > 0 && messages[0].Role == "system")
            {
                systemMessage = StripLikePython(messages[0].Content);
                first = 1;
            }

            text.Append(Llama3StartHeader).Append("system").Append(Llama3EndHeader).Append("\n\n")
                .Append("Cutting Knowledge Date: ").Append(system.CutOff).Append('\n')
                .Append("Today Date: ").Append(DateString).Append("\n\n")
                .Append(systemMessage).Append(Llama3EndOfTurn);
        }

        for (int i = first; i < messages.Count; i++)
        {
            (string role, string content) = messages[i];
            text.Append(Llama3StartHeader).Append(role).Append(Llama3EndHeader).Append("\n\n").Append(StripLikePython(content)).Append(Llama3EndOfTurn);
        }

        if (addGenerationPrompt)
        {
            text.Append(Llama3StartHeader).Append("assistant").Append(Llama3EndHeader).Append("\n\n");
        }

        return text.ToString();
    }

    // Python's str.strip() (Jinja's trim filter) removes Unicode whitespace: string.Trim()'s, and the separators
    // U+001C–U+001F, which Python counts as whitespace and .NET does not.
    private static string StripLikePython(string text)
    {
        int start = 0, end = text.Length;
        while (start < end && IsPythonWhitespace(text[start]))
        {
            start++;
        }

        while (end > start && IsPythonWhitespace(text[end - 1]))
        {
            end--;
        }

        return text[start..end];
    }

    private static bool IsPythonWhitespace(char c) => char.IsWhiteSpace(c) || c is >= '\u001C' and <= '\u001F';

    // Qwen2: "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}" — a literal whose whole text is the system turn.
    private static string? FindChatMlDefaultSystemPrompt(string jinja)
    {
        Match match = DefaultSystemTurn().Match(jinja);
        return match.Success ? UnescapeJinjaString(match.Groups["prompt"].Value) : null;
    }

    [GeneratedRegex(@"(?<quote>['""])<\|im_start\|>system(?:\\n|\n)(?<prompt>(?:(?!\k<quote>)[^\\]|\\.)*?)<\|im_end\|>(?:\\n|\n)?\k<quote>")]
    private static partial Regex DefaultSystemTurn();

    // Gemma 3: "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}" — the literal after the system message's content.
    [GeneratedRegex(@"first_user_prefix\s*=\s*messages\[0\]\[(?<key>['""])content\k<key>\]\s*\+\s*(?<quote>['""])(?<separator>(?:(?!\k<quote>)[^\\]|\\.)*)\k<quote>")]
    private static partial Regex GemmaSystemPrefix();

    // Llama 3.1: {{- "Cutting Knowledge Date: December 2023\n" }}.
    [GeneratedRegex(@"Cutting Knowledge Date: (?<date>[^""'\\]*)")]
    private static partial Regex Llama3CutOff();

    // Llama 3.1: {%- set date_string = "26 Jul 2024" %} (3.2 keeps it where strftime_now is undefined).
    [GeneratedRegex(@"set\s+date_string\s*=\s*(?<quote>['""])(?<date>[^'""]*)\k<quote>")]
    private static partial Regex Llama3FixedDate();

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
