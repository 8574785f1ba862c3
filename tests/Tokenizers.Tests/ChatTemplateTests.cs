using System;
using TransformerGen.Tokenizers.Chat;
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
