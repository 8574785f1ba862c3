using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;
using static TransformerGen.Tokenizers.Tests.Support.Llama3FolderFromCl100k;

namespace TransformerGen.Tokenizers.Tests;

/// <summary>
/// Llama 3's tokenizer.json (Llama-3.2-1B-Instruct's form, built from cl100k_base's ranks, which are Llama 3's first
/// 100,256 ids): its BPE model's <c>ignore_merges</c> is honoured, so the ids are tiktoken's, checked against
/// Microsoft.ML.Tokenizers' own cl100k_base tokenizer and a published encoding.
/// </summary>
public sealed class Llama3TokenizerTests : IDisposable
{
    private const string Corpus = "Hello, world! It's 2024: naïve café, 日本語 and emoji 🎉.\n\n  def f(x):\n\treturn x**2  # squared\r\nWHY'LL they've 12345678 ...";

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private PretrainedTokenizer Open(bool ignoreMerges = true)
    {
        Write(_folder, ignoreMerges);
        return PretrainedTokenizer.FromFolder(_folder.Path);
    }

    [Fact]
    public void A_published_encoding_comes_out_with_begin_of_text_first()
    {
        // Llama 3's "Hello, world!": <|begin_of_text|> Hello , Ġworld ! (cl100k_base's ids for the text).
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([BeginOfText, 9906, 11, 1917, 0], tokenizer.Encode("Hello, world!"));
        Assert.Equal(BeginOfText, tokenizer.BosId);
        Assert.Equal(EndOfTurn, tokenizer.EosId);
        Assert.Equal("Hello, world!", tokenizer.Decode([9906, 11, 1917, 0]));
        Assert.Equal([StartHeader, 882, EndHeader], tokenizer.Encode("<|start_header_id|>user<|end_header_id|>", addSpecialTokens: false));
    }

    [Fact]
    public void Every_text_encodes_as_tiktoken_encodes_it()
    {
        PretrainedTokenizer tokenizer = Open();
        TiktokenTokenizer tiktoken = TiktokenTokenizer.CreateForModel("gpt-4");
        foreach (string text in Corpus.Split('.').Append(Corpus))
            Assert.Equal(tiktoken.EncodeToIds(text), tokenizer.Encode(text, addSpecialTokens: false));
        // Decoding gives the text back, but for the spaces transformers' clean_up_tokenization_spaces removes (Llama 3's
        // tokenizer_config.json sets it): " ..." comes back as "...".
        string decoded = tokenizer.Decode([.. tokenizer.Encode(Corpus, addSpecialTokens: false)]);
        Assert.Equal(Corpus.Replace(" ...", "..."), decoded);
    }

    [Fact]
    public void Ignore_merges_takes_a_piece_the_vocabulary_spells_whole_where_merging_cannot_reach_it()
    {
        // Without the merge that makes " world" (1917), merging stops at two pieces; ignore_merges looks " world" up whole,
        // as tiktoken does. Read as a plain BPE, the same files split it.
        Write(_folder, ignoreMerges: false, withoutMergeOf: " world");
        Assert.Equal(2, PretrainedTokenizer.FromFolder(_folder.Path).Encode(" world", addSpecialTokens: false).Count);
        Write(_folder, ignoreMerges: true, withoutMergeOf: " world");
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        Assert.Equal([1917], tokenizer.Encode(" world", addSpecialTokens: false));
        Assert.Equal([BeginOfText, 9906, 11, 1917, 0], tokenizer.Encode("Hello, world!"));
        // A piece that is no token (" worlds") is merged as before, and decodes back.
        Assert.Equal(" worlds", tokenizer.Decode([.. tokenizer.Encode(" worlds", addSpecialTokens: false)]));
    }

    [Fact]
    public void The_folders_chat_template_is_llama3s_and_its_text_encodes_to_the_header_tokens()
    {
        const string template = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
        Write(_folder, chatTemplate: template);
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        Assert.Equal(Chat.ChatTemplateStyle.Llama3, tokenizer.Chat!.Style);
        string text = tokenizer.Chat.Format([("user", "Hello, world!")]);
        // "user" 882, "\n\n" 271, "assistant" 78191: cl100k_base's ids, which are Llama 3's.
        Assert.Equal([BeginOfText, StartHeader, 882, EndHeader, 271, 9906, 11, 1917, 0, EndOfTurn, StartHeader, 78191, EndHeader, 271],
            tokenizer.Encode(text, addSpecialTokens: false));
        Assert.Equal(EndOfTurn, tokenizer.SpecialTokenId(tokenizer.Chat.EndOfTurn));
    }
}
