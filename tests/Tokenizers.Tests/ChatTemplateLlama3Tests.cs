using System;
using System.Globalization;
using TransformerGen.Tokenizers.Chat;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;

namespace TransformerGen.Tokenizers.Tests;

/// <summary>
/// Llama 3's chat templates (Meta-Llama-3-8B-Instruct's, and Llama-3.2-1B-Instruct's with its tool branches shortened),
/// written as Jinja source after JSON unescaping; the expected strings are what transformers' apply_chat_template renders.
/// </summary>
public sealed class ChatTemplateLlama3Tests
{
    private const string Llama30 =
        @"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

    private const string Llama32 =
        @"{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now(""%d %b %Y"") %}
    {%- else %}
        {%- set date_string = ""26 Jul 2024"" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = """" %}
{%- endif %}

{#- System message #}
{{- ""<|start_header_id|>system<|end_header_id|>\n\n"" }}
{%- if tools is not none %}
    {{- ""Environment: ipython\n"" }}
{%- endif %}
{{- ""Cutting Knowledge Date: December 2023\n"" }}
{{- ""Today Date: "" + date_string + ""\n\n"" }}
{{- system_message }}
{{- ""<|eot_id|>"" }}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
";

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
        ChatTemplate chat = Recognize(Llama32);
        Assert.Equal(DateTime.Today.ToString("dd MMM yyyy", CultureInfo.InvariantCulture), chat.DateString);

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
