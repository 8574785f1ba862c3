namespace TransformerGen.Tokenizers.Tests.Support;

/// <summary>
/// Llama 3's chat templates as their tokenizer_config.json files hold them (after JSON unescaping): Meta-Llama-3-8B-Instruct's,
/// and Llama-3.2-1B-Instruct's with its tool branches shortened. The Tokenizers tests render them; the Chat sample's
/// tests put Llama 3.2's into the tiny Llama 3 folder (<see cref="Llama3FolderFromCl100k"/>).
/// </summary>
internal static class Llama3ChatTemplates
{
    /// <summary>Llama 3.0's: each trimmed turn under its role's header, <c>bos_token</c> first.</summary>
    public const string Llama30 =
        @"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

    /// <summary>Llama 3.2's: a system turn always first, with the knowledge cutoff and today's date (<c>strftime_now</c>).</summary>
    public const string Llama32 =
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
}
