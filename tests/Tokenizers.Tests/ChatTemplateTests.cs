using System;
using System.Collections.Generic;
using TransformerGen.Tokenizers.Chat;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;

namespace TransformerGen.Tokenizers.Tests;

/// <summary>
/// The templates below are the models' tokenizer_config.json <c>chat_template</c> values as published (Qwen2.5's
/// shortened to the parts without tools), written as the Jinja source text, i.e. after JSON unescaping: a
/// newline inside a Jinja string literal is the two characters \n. The expected strings are what transformers'
/// <c>apply_chat_template</c> renders (Jinja with trim_blocks and lstrip_blocks); TinyLlama's matches the
/// example on its model card.
/// </summary>
public sealed class ChatTemplateTests
{
    private const string Qwen2 =
        @"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    private const string Qwen25WithoutTools =
        @"{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == ""user"") or (message.role == ""system"" and not loop.first) or (message.role == ""assistant"" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
";

    private const string SmolLm2 =
        @"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    private const string TinyLlama =
        "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + message['content'] + eos_token }}\n"
        + "{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + message['content'] + eos_token }}\n"
        + "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n"
        + "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

    internal const string Llama2 =
        @"{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

    // Phi-3 writes <|user|>\n too, but ends turns with <|end|>: not Zephyr.
    private const string Phi3 =
        @"{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";

    private const string Gemma3 = GemmaFolder.ChatTemplate;

    // Gemma 2's (gemma-2-2b-it), whose literals use the escape \n; it refuses a system message.
    private const string Gemma2 =
        @"{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";

    private static ChatTemplate RecognizeGemma(string jinja)
    {
        ChatTemplate? template = ChatTemplate.Recognize(jinja, "<bos>", "<eos>", out string? reason);
        Assert.Null(reason);
        ChatTemplate chat = Assert.IsType<ChatTemplate>(template);
        Assert.Equal(ChatTemplateStyle.Gemma, chat.Style);
        return chat;
    }

    private static ChatTemplate Recognize(string jinja)
    {
        ChatTemplate? template = ChatTemplate.Recognize(jinja, "<s>", "</s>", out string? reason);
        Assert.Null(reason);
        return Assert.IsType<ChatTemplate>(template);
    }

    [Fact]
    public void Qwen2_adds_its_default_system_turn()
    {
        ChatTemplate chat = Recognize(Qwen2);
        Assert.Equal(ChatTemplateStyle.ChatMl, chat.Style);
        Assert.Equal("<|im_end|>", chat.EndOfTurn);
        Assert.Equal(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
            chat.Format([("user", "Hi there")]));
    }

    [Fact]
    public void ChatMl_writes_a_whole_conversation()
    {
        Assert.Equal(
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n",
            Recognize(Qwen2).Format([("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"), ("user", "Bye")], addGenerationPrompt: false));
    }

    [Fact]
    public void Qwen25_and_SmolLm2_default_system_prompts_are_read_from_their_templates()
    {
        Assert.Equal("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", Recognize(Qwen25WithoutTools).DefaultSystemPrompt);
        Assert.Equal("You are a helpful AI assistant named SmolLM, trained by Hugging Face", Recognize(SmolLm2).DefaultSystemPrompt);
        Assert.Equal(
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n",
            Recognize(SmolLm2).Format([("user", "2+2?")]));
    }

    [Fact]
    public void ChatMl_without_a_default_system_turn_writes_only_the_messages()
    {
        ChatTemplate chat = Recognize(@"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}");
        Assert.Null(chat.DefaultSystemPrompt);
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", chat.Format([("user", "Hi")]));
    }

    [Fact]
    public void TinyLlama_is_zephyr_with_eos_after_each_turn()
    {
        ChatTemplate chat = Recognize(TinyLlama);
        Assert.Equal(ChatTemplateStyle.Zephyr, chat.Style);
        Assert.Equal("</s>", chat.EndOfTurn);
        Assert.Equal(
            "<|system|>\nYou are a friendly chatbot who always responds in the style of a pirate</s>\n<|user|>\nHow many helicopters can a human eat in one sitting?</s>\n<|assistant|>\n",
            chat.Format([("system", "You are a friendly chatbot who always responds in the style of a pirate"), ("user", "How many helicopters can a human eat in one sitting?")]));
        Assert.Equal("<|user|>\nHi</s>\n<|assistant|>\nHello</s>\n", chat.Format([("user", "Hi"), ("assistant", "Hello")], addGenerationPrompt: false));
    }

    [Fact]
    public void Llama2_puts_the_system_prompt_inside_the_first_instruction()
    {
        ChatTemplate chat = Recognize(Llama2);
        Assert.Equal(ChatTemplateStyle.Llama2, chat.Style);
        Assert.Equal(
            "<s>[INST] <<SYS>>\nBe nice.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]",
            chat.Format([("system", "Be nice."), ("user", "Hi"), ("assistant", " Hello! "), ("user", "Bye  ")]));
        Assert.Equal("<s>[INST] Hi [/INST]", chat.Format([("user", "Hi")]));
    }

    [Fact]
    public void Llama2_refuses_roles_that_do_not_alternate()
    {
        ArgumentException error = Assert.Throws<ArgumentException>(() => Recognize(Llama2).Format([("user", "a"), ("user", "b")]));
        Assert.StartsWith("Conversation roles must alternate", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Recognize(Llama2).Format([("assistant", "a")]));
    }

    [Fact]
    public void Gemma3_puts_the_system_message_at_the_head_of_the_first_user_turn()
    {
        ChatTemplate chat = RecognizeGemma(Gemma3);
        Assert.Equal("<end_of_turn>", chat.EndOfTurn);
        Assert.Equal(
            "<bos><start_of_turn>user\nBe brief.\n\nHi!<end_of_turn>\n<start_of_turn>model\n",
            chat.Format([("system", "Be brief."), ("user", "Hi!")], addGenerationPrompt: true));
        Assert.Equal("<bos><start_of_turn>user\nHi!<end_of_turn>\n", chat.Format([("user", "Hi!")], addGenerationPrompt: false));
    }

    [Fact]
    public void Gemma3_writes_the_assistant_as_model_and_trims_each_message_but_not_the_system_text()
    {
        // content | trim strips each message; first_user_prefix is the system content as it is, then "\n\n".
        Assert.Equal(
            "<bos><start_of_turn>user\n Be brief. \n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n",
            RecognizeGemma(Gemma3).Format(
                [("system", " Be brief. "), ("user", "  Hi "), ("assistant", "\nHello!\n"), ("user", "\u001FBye\t\u001C")], addGenerationPrompt: false));
    }

    [Fact]
    public void Gemma3_raises_as_its_template_does()
    {
        ChatTemplate chat = RecognizeGemma(Gemma3);
        foreach (IReadOnlyList<(string, string)> conversation in new[]
        {
            new[] { ("user", "a"), ("user", "b") },
            new[] { ("assistant", "a") },
            new[] { ("system", "s"), ("assistant", "a") },
            new[] { ("system", "s"), ("system", "t") },
        })
        {
            ArgumentException error = Assert.Throws<ArgumentException>(() => chat.Format(conversation));
            Assert.StartsWith("Conversation roles must alternate", error.Message, StringComparison.Ordinal);
        }

        Assert.Throws<ArgumentException>(() => chat.Format([]));

        // A system message later on, where an assistant turn may stand, passes the check and keeps its role.
        Assert.Equal(
            "<bos><start_of_turn>user\na<end_of_turn>\n<start_of_turn>system\nb<end_of_turn>\n<start_of_turn>model\n",
            chat.Format([("user", "a"), ("system", "b")]));
        Assert.Equal("<bos><start_of_turn>model\n", chat.Format([("system", "only")]));
    }

    [Fact]
    public void Gemma_separator_after_the_system_text_is_read_from_the_template()
    {
        string oneNewline = Gemma3.Replace("+ '\n\n'", "+ '\\n'", StringComparison.Ordinal);
        Assert.NotEqual(Gemma3, oneNewline);
        Assert.Equal(
            "<bos><start_of_turn>user\nBe brief.\nHi!<end_of_turn>\n<start_of_turn>model\n",
            RecognizeGemma(oneNewline).Format([("system", "Be brief."), ("user", "Hi!")]));
    }

    [Fact]
    public void Gemma2_refuses_a_system_message()
    {
        ChatTemplate chat = RecognizeGemma(Gemma2);
        Assert.Equal("<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", chat.Format([("user", " Hi")]));
        ArgumentException error = Assert.Throws<ArgumentException>(() => chat.Format([("system", "Be brief."), ("user", "Hi")]));
        Assert.StartsWith("System role not supported", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Gemma_without_a_bos_token_is_not_recognised()
    {
        Assert.Null(ChatTemplate.Recognize(Gemma3, null, "<eos>", out string? reason));
        Assert.Contains("BOS", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_gemma_writes_gemma_3s_layout_with_its_own_bos()
    {
        ChatTemplate chat = ChatTemplate.Create(ChatTemplateStyle.Gemma);
        Assert.Equal(
            RecognizeGemma(Gemma3).Format([("system", "S"), ("user", "U"), ("assistant", "A"), ("user", "V")]),
            chat.Format([("system", "S"), ("user", "U"), ("assistant", "A"), ("user", "V")]));
        Assert.StartsWith("<bos><start_of_turn>user\nS\n\nU", chat.Format([("system", "S"), ("user", "U")]), StringComparison.Ordinal);
        Assert.Equal("<end_of_turn>", chat.EndOfTurn);
    }

    [Fact]
    public void Unknown_roles_are_refused()
    {
        Assert.Throws<ArgumentException>(() => Recognize(Qwen2).Format([("tool", "{}")]));
    }

    [Fact]
    public void Other_templates_give_null_and_a_reason()
    {
        Assert.Null(ChatTemplate.Recognize(Phi3, "<s>", "<|endoftext|>", out string? reason));
        Assert.Contains("none of the layouts", reason, StringComparison.Ordinal);

        Assert.Null(ChatTemplate.Recognize(null, "<s>", "</s>", out reason));
        Assert.Contains("no chat template", reason, StringComparison.Ordinal);

        Assert.Null(ChatTemplate.Recognize(TinyLlama, null, null, out reason));
        Assert.Contains("EOS", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_builds_a_template_without_jinja()
    {
        ChatTemplate chat = ChatTemplate.Create(ChatTemplateStyle.ChatMl, "Be brief.");
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", chat.Format([("user", "Hi")]));
    }
}
