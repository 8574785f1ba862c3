using TransformerGen;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// A Llama 3 of Llama-3.2-1B-Instruct's form at toy size: 10 wide, 2 layers, 2 query heads of 14 (not 10 / 2) on one
/// key/value head, SwiGLU 24, tied head, eos_token_id [128001, 128008, 128009], and Llama 3's 128,256 ids, so that the
/// cl100k-based tokenizer's ids and the special tokens from 128,000 fit (1.29 M parameters, 5 MB in fp32, almost all of
/// them the table). Its rotation is scaled as llama3 with bands that bite at small positions: theta 100 gives
/// wavelengths of 6.3 to 324 positions over the 7 pairs, against 64 / 8 = 8 (kept), 64 / 1 = 64 (divided by 4) and the
/// smoothed ones between. The Chat sample's tests run it beside <see cref="TinyChatModel"/>, which is llama too.
/// </summary>
[TransformerModel(Config = "Models/tiny-llama3/config.json", SeqLen = 96)]
public partial class TinyLlama3ChatModel { }
