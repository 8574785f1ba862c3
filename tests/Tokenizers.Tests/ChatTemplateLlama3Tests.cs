using System;
using System.Globalization;
using TransformerGen.Tokenizers.Chat;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;

namespace TransformerGen.Tokenizers.Tests;

/// <summary>
/// Llama 3's chat templates (Meta-Llama-3-8B-Instruct's, and Llama-3.2-1B-Instruct's with its tool branches shortened:
/// <see cref="Llama3ChatTemplates"/>); the expected strings are what transformers' apply_chat_template renders.
/// </summary>
public sealed class ChatTemplateLlama3Tests
{
    private const string Llama30 = Llama3ChatTemplates.Llama30;

    private const string Llama32 = Llama3ChatTemplates.Llama32;

    private static ChatTemplate Recognize(string jinja)
    {
        ChatTemplate chat = ChatTemplate.Recognize(jinja, "<|begin_of_text|>", "<|eot_id|>", out string? reason)
            ?? throw new Xunit.Sdk.XunitException(reason);
        Assert.Equal(ChatTemplateStyle.Llama3, chat.Style);
        Assert.Equal("<|eot_id|>", chat.EndOfTurn);
        return chat;
    }

    [Fact]
    public void Llama3_0_heads_each_trimmed_turn_with_its_role()
    {
        ChatTemplate chat = Recognize(Llama30);
        Assert.Null(chat.DateString);
        Assert.Throws<InvalidOperationException>(() => chat.WithDate("07 Dec 2026"));
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nAnd?<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\n",
            chat.Format([("system", "Be brief."), ("user", "  Hi there\n"), ("assistant", "Hello!"), ("user", "And?")]));
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", chat.Format([("user", "Hi")], addGenerationPrompt: false));
    }

    [Fact]
    public void Llama3_2_always_opens_with_a_dated_system_turn()
    {
        // strftime_now is defined in transformers: today's date, "%d %b %Y".
        string before = DateTime.Today.ToString("dd MMM yyyy", CultureInfo.InvariantCulture);
        ChatTemplate chat = Recognize(Llama32);
        string after = DateTime.Today.ToString("dd MMM yyyy", CultureInfo.InvariantCulture);
        Assert.Contains(chat.DateString, new[] { before, after }); // the day it was read, midnight or not

        ChatTemplate dated = chat.WithDate("07 Dec 2026");
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 07 Dec 2026\n\n"
            + "You are a pirate.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            dated.Format([("system", " You are a pirate.\n"), ("user", "Hi")]));
        // Without a system message the turn is there, empty after the dates.
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 07 Dec 2026\n\n<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
            dated.Format([("user", "Hi")], addGenerationPrompt: false));
    }

    [Fact]
    public void Llama3_1_keeps_its_fixed_date()
    {
        // Llama 3.1's template has no strftime_now: date_string stays "26 Jul 2024".
        string llama31 = Llama32.Replace(
            "{%- if strftime_now is defined %}\n        {%- set date_string = strftime_now(\"%d %b %Y\") %}\n    {%- else %}\n        {%- set date_string = \"26 Jul 2024\" %}\n    {%- endif %}",
            "{%- set date_string = \"26 Jul 2024\" %}");
        Assert.DoesNotContain("strftime_now", llama31);
        ChatTemplate chat = Recognize(llama31);
        Assert.Equal("26 Jul 2024", chat.DateString);
        Assert.StartsWith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>",
            chat.Format([("user", "Hi")]));
    }
}
