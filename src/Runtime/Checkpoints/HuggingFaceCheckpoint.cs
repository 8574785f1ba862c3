using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace TransformerGen;

/// <summary>
/// Loads Hugging Face checkpoints (<c>model.safetensors</c>, or shards with <c>model.safetensors.index.json</c>) of the
/// GPT-2, BERT, Llama and Qwen2 families into a model's flat parameter buffer, and saves a model as such a checkpoint.
/// </summary>
/// <remarks>
/// <para>A file's names are matched to the model's through the family's table (<see cref="CheckpointFamily"/>;
/// MODEL_FAMILIES.md §0–3): the base model's prefix (<c>transformer.</c>, <c>bert.</c>, <c>model.</c>) is optional on
/// both sides, BERT's legacy <c>LayerNorm.gamma</c>/<c>beta</c> are read as <c>weight</c>/<c>bias</c>, buffers that are not
/// parameters (GPT-2's causal mask, BERT's position ids, Llama's rotary frequencies) are skipped when their name, dtype
/// and shape fit, unused heads (BERT's pooler and <c>cls.*</c>) are skipped, and so is an <c>lm_head.weight</c> of the
/// embedding's shape in a model that ties the two. Skipped tensors are listed in <see cref="SafeTensorsLoadReport.Skipped"/>.
/// Any other tensor, a missing tensor, a wrong shape or dtype is an error.</para>
/// <para>GPT-2's <c>Conv1D</c> weights (<see cref="ParameterTensor.StoredTransposed"/>) are stored <c>[in, out]</c>, the
/// model's shape reversed: they are transposed while read, and back while saved, through a fixed 64 KB scratch.</para>
/// <para>Every header (and the index) is read and checked before the buffer is written, so on any error the parameters
/// are unchanged; only an I/O failure while reading the data (a file changing underneath) can leave them half-loaded.
/// The data goes straight from the files into the buffer: memory allocated during a load is the headers, the names and
/// the scratch, whatever the size of the tensors.</para>
/// <para><see cref="CheckpointFamily.Native"/> is this project's own layout: loading and saving are exactly
/// <see cref="SafeTensors.Load(string, IReadOnlyList{ParameterTensor}, Span{float}, bool)"/> with <c>strict</c> and
/// <see cref="SafeTensors.Save(string, IReadOnlyList{ParameterTensor}, ReadOnlySpan{float}, IReadOnlyDictionary{string, string}?)"/>.</para>
/// </remarks>
public static class HuggingFaceCheckpoint
{
    /// <summary>The file name of a checkpoint in one file.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>The file name of the index of a checkpoint in shards.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>
    /// Reads every tensor of <paramref name="tensors"/> from the <paramref name="family"/> checkpoint at
    /// <paramref name="path"/> into <paramref name="buffer"/>.
    /// </summary>
    /// <param name="path">A <c>.safetensors</c> file; a <c>model.safetensors.index.json</c> whose shards lie beside it; or a
    /// directory holding <see cref="SingleFileName"/> or, when it has none, <see cref="IndexFileName"/> (the order
    /// <c>from_pretrained</c> looks in).</param>
    /// <param name="tensors">The model's tensor table, with its family's canonical names.</param>
    /// <param name="buffer">The flat parameter buffer to fill.</param>
    /// <param name="family">Whose layout the files follow.</param>
    /// <returns>The tensors loaded (table order) and those skipped with the reason; <c>Missing</c> and <c>Unexpected</c> are empty (either is an error).</returns>
    /// <exception cref="InvalidDataException">A file is malformed, the index disagrees with the shards' headers, or the
    /// checkpoint does not match the table (a tensor missing, unexpected, of another shape or dtype, a buffer of the wrong
    /// shape); the message names the tensor, the file and the shapes. The buffer is then untouched.</exception>
    /// <exception cref="FileNotFoundException"><paramref name="path"/> is a directory with neither file, or does not exist.</exception>
    /// <exception cref="ArgumentException">The table has a duplicate or reserved name (or two names equal without the
    /// family's prefix), a tensor lies outside <paramref name="buffer"/>, or a <see cref="ParameterTensor.StoredTransposed"/> tensor is not 2-D.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="family"/> is not a member of <see cref="CheckpointFamily"/>.</exception>
    public static SafeTensorsLoadReport Load(string path, IReadOnlyList<ParameterTensor> tensors, Span<float> buffer, CheckpointFamily family) =>
        LoadInto(path, tensors, buffer, family);

    /// <summary>
    /// As <see cref="Load(string, IReadOnlyList{ParameterTensor}, Span{float}, CheckpointFamily)"/>, into each tensor's
    /// segment of <paramref name="buffer"/>; <paramref name="written"/> is told the index of each tensor once its values are in.
    /// </summary>
    internal static SafeTensorsLoadReport LoadInto(string path, IReadOnlyList<ParameterTensor> tensors, ParameterSpans buffer, CheckpointFamily family, Action<int>? written = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        if (family == CheckpointFamily.Native) return SafeTensors.LoadInto(path, tensors, buffer, strict: true, written);
        CheckpointFamilyRules rules = CheckpointFamilyRules.For(family);
        SafeTensors.RequireLittleEndian();
        SafeTensors.CheckTable(path, tensors, buffer, nameof(buffer), storedLayout: true);
        var table = new CheckpointTable(tensors, rules, path);

        (string checkpoint, SafeTensorsShardIndex? index) = Resolve(path);
        var shards = new List<Shard>();
        try
        {
            if (index is null)
            {
                shards.Add(Shard.Open(checkpoint));
            }
            else
            {
                foreach (string shard in index.Shards) shards.Add(Shard.Open(index, shard));
                CheckWeightMap(index, shards);
            }
            bool folder = Directory.Exists(path);
            AddModuleFiles(folder ? path : Path.GetDirectoryName(Path.GetFullPath(checkpoint)) ?? ".", tensors, shards, checkListed: folder);
            return Load(checkpoint, shards, tensors, table, buffer, rules, written);
        }
        finally
        {
            foreach (Shard shard in shards) shard.Dispose();
        }
    }

    /// <summary>
    /// Reads every tensor of <paramref name="tensors"/> from a <paramref name="family"/> checkpoint file held in
    /// <paramref name="stream"/> (from its current position to its end; weights built into the program, say), as
    /// <see cref="Load(string, IReadOnlyList{ParameterTensor}, Span{float}, CheckpointFamily)"/> does a single file.
    /// The stream stays open; its position afterwards is unspecified.
    /// </summary>
    /// <param name="stream">A readable, seekable stream.</param>
    /// <param name="tensors">The model's tensor table, with its family's canonical names.</param>
    /// <param name="buffer">The flat parameter buffer to fill.</param>
    /// <param name="family">Whose layout the file follows.</param>
    /// <param name="name">What error messages call the file (the resource name, say); <c>"stream"</c> when omitted.</param>
    /// <returns>The tensors loaded and those skipped with the reason.</returns>
    /// <exception cref="InvalidDataException">The data is malformed or does not match the table; the buffer is then untouched.</exception>
    /// <exception cref="ArgumentException">The stream cannot read or seek, or the table is invalid (see the path overload).</exception>
    public static SafeTensorsLoadReport Load(Stream stream, IReadOnlyList<ParameterTensor> tensors, Span<float> buffer, CheckpointFamily family, string? name = null) =>
        LoadInto(stream, tensors, buffer, family, name);

    /// <summary>As <see cref="LoadInto(string, IReadOnlyList{ParameterTensor}, ParameterSpans, CheckpointFamily, Action{int}?)"/>, from a stream.</summary>
    internal static SafeTensorsLoadReport LoadInto(Stream stream, IReadOnlyList<ParameterTensor> tensors, ParameterSpans buffer, CheckpointFamily family, string? name = null, Action<int>? written = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensors);
        name ??= "stream";
        if (family == CheckpointFamily.Native) return SafeTensors.LoadInto(stream, tensors, buffer, strict: true, name, written);
        CheckpointFamilyRules rules = CheckpointFamilyRules.For(family);
        SafeTensors.RequireLittleEndian();
        SafeTensors.CheckTable(name, tensors, buffer, nameof(buffer), storedLayout: true);
        var table = new CheckpointTable(tensors, rules, name);
        using var shard = Shard.From(new SafeTensorsSource(stream, name));
        return Load(name, [shard], tensors, table, buffer, rules, written);
    }

    /// <summary>
    /// Writes the tensors of <paramref name="tensors"/>, taken from <paramref name="buffer"/>, to <paramref name="path"/> as
    /// a <paramref name="family"/> checkpoint that Hugging Face <c>from_pretrained</c> reads: F32, the table's canonical
    /// names, <see cref="ParameterTensor.StoredTransposed"/> tensors transposed back to <c>[in, out]</c>, and
    /// <c>"format": "pt"</c> in the metadata. Atomic, as
    /// <see cref="SafeTensors.Save(string, IReadOnlyList{ParameterTensor}, ReadOnlySpan{float}, IReadOnlyDictionary{string, string}?)"/>.
    /// For <see cref="CheckpointFamily.Native"/>, exactly that method.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="tensors">The model's tensor table.</param>
    /// <param name="buffer">The flat parameter buffer.</param>
    /// <param name="family">Whose layout to write.</param>
    /// <param name="metadata">Optional string metadata for <c>__metadata__</c>; <c>format</c>, if given, must be <c>pt</c>.</param>
    /// <exception cref="ArgumentException">The table is invalid (see <see cref="Load(string, IReadOnlyList{ParameterTensor}, Span{float}, CheckpointFamily)"/>), or the metadata's <c>format</c> is not <c>pt</c>.</exception>
    public static void Save(string path, IReadOnlyList<ParameterTensor> tensors, ReadOnlySpan<float> buffer, CheckpointFamily family, IReadOnlyDictionary<string, string>? metadata = null) =>
        Save(path, tensors, buffer, family, metadata, storage: null);

    /// <summary>
    /// A sentence-transformers folder: the tensors of no module in <paramref name="folder"/>/<see cref="SingleFileName"/> as
    /// <see cref="Save(string, IReadOnlyList{ParameterTensor}, ReadOnlySpan{float}, CheckpointFamily, IReadOnlyDictionary{string, string}?)"/>
    /// writes them, and each module's (<c>2_Dense.linear.weight</c>, …) in <c>{module}/</c><see cref="SingleFileName"/>
    /// under the module's own names (<c>linear.weight</c>), where the loader reads them back.
    /// </summary>
    internal static void SaveSentenceTransformers(string folder, IReadOnlyList<ParameterTensor> tensors, ReadOnlySpan<float> buffer, CheckpointFamily family,
        IReadOnlyDictionary<string, string> metadata)
    {
        var transformer = new List<ParameterTensor>();
        var modules = new Dictionary<string, List<ParameterTensor>>(StringComparer.Ordinal);
        foreach (ParameterTensor tensor in tensors)
        {
            if (SentenceTransformersFolder.ModuleOf(tensor.Name) is not { } module)
            {
                transformer.Add(tensor);
                continue;
            }
            if (!modules.TryGetValue(module, out List<ParameterTensor>? own)) modules[module] = own = [];
            own.Add(new ParameterTensor(tensor.Name[(module.Length + 1)..], tensor.Shape.ToArray(), tensor.Offset));
        }
        foreach ((string module, List<ParameterTensor> own) in modules)
        {
            Directory.CreateDirectory(Path.Combine(folder, module));
            SafeTensors.Save(Path.Combine(folder, module, SingleFileName), own, buffer, metadata);
        }
        Save(Path.Combine(folder, SingleFileName), transformer, buffer, family, metadata);
    }

    /// <summary>As the public overload, with some matrices stored in bf16 or 8 bits (<see cref="TensorStorage"/>; never a transposed one).</summary>
    internal static void Save(string path, IReadOnlyList<ParameterTensor> tensors, ReadOnlySpan<float> buffer, CheckpointFamily family,
        IReadOnlyDictionary<string, string>? metadata, TensorStorage[]? storage)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        if (family == CheckpointFamily.Native)
        {
            SafeTensors.Save(path, tensors, buffer, values: null, metadata, beforeCommit: null, storage: storage);
            return;
        }
        CheckpointFamilyRules rules = CheckpointFamilyRules.For(family);
        SafeTensors.CheckTable(path, tensors, buffer.Length, nameof(buffer), storedLayout: true);
        _ = new CheckpointTable(tensors, rules, path); // names that would not load back apart are refused before writing

        // transformers refuses a safetensors file whose metadata lacks "format" or names a framework it does not load from.
        var header = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
        if (metadata is not null)
        {
            foreach (KeyValuePair<string, string> entry in metadata) header[entry.Key] = entry.Value;
            if (header["format"] != "pt")
                throw new ArgumentException($"'{path}': metadata 'format' is '{header["format"]}', but a PyTorch-layout checkpoint is 'pt'", nameof(metadata));
        }
        SafeTensors.Save(path, tensors, buffer, values: null, header, beforeCommit: null, output: null, storedLayout: true, storage);
    }

    /// <summary>The checkpoint's file (a single file or an index) and its index, if it is one.</summary>
    private static (string Checkpoint, SafeTensorsShardIndex? Index) Resolve(string path)
    {
        if (Directory.Exists(path))
        {
            string single = Path.Combine(path, SingleFileName), index = Path.Combine(path, IndexFileName);
            if (File.Exists(single)) return (single, null);
            if (File.Exists(index)) return (index, SafeTensorsShardIndex.Read(index));
            throw new FileNotFoundException($"'{path}' is a directory without a checkpoint: neither '{single}' nor '{index}' exists", single);
        }
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return (path, SafeTensorsShardIndex.Read(path));
        return (path, null);
    }

    /// <summary>
    /// A sentence embedder's Dense layers after the pooling (<c>2_Dense.linear.weight</c>, …) come from their module's own
    /// file in <paramref name="folder"/> (<c>2_Dense/model.safetensors</c>: <c>linear.weight</c>, <c>linear.bias</c>), unless
    /// the checkpoint itself holds them (as <see cref="Save(string, IReadOnlyList{ParameterTensor}, ReadOnlySpan{float}, CheckpointFamily, IReadOnlyDictionary{string, string}?)"/>
    /// writes them). With <paramref name="checkListed"/> (a folder was given, that is the model as sentence-transformers
    /// defines it), a folder whose modules.json lists a Dense layer that the model lacks is refused: its embeddings would
    /// not be the ones sentence-transformers computes. A checkpoint file given by its path is the transformer alone.
    /// </summary>
    private static void AddModuleFiles(string folder, IReadOnlyList<ParameterTensor> tensors, List<Shard> shards, bool checkListed)
    {
        var modules = new List<string>();
        foreach (ParameterTensor tensor in tensors)
            if (SentenceTransformersFolder.ModuleOf(tensor.Name) is { } module && !modules.Contains(module)) modules.Add(module);
        if (checkListed)
        {
            foreach (string listed in SentenceTransformersFolder.DenseModules(folder))
                if (!modules.Contains(listed))
                    throw new InvalidDataException($"'{folder}': {SentenceTransformersFolder.ModulesFileName} has a Dense layer '{listed}' after the pooling, which the model was compiled without, so its embeddings would not be the folder's; compile the model from this folder's config.json with its modules.json and {listed}/config.json beside it (the build reads them), or load the transformer's file alone");
        }
        int mainShards = shards.Count;
        foreach (string module in modules)
        {
            string prefix = module + ".";
            bool inCheckpoint = false;
            for (int s = 0; s < mainShards && !inCheckpoint; s++)
                foreach (string name in shards[s].Names) inCheckpoint |= name.StartsWith(prefix, StringComparison.Ordinal);
            if (inCheckpoint) continue;
            string file = Path.Combine(folder, module, SingleFileName);
            if (!File.Exists(file))
                throw new FileNotFoundException($"The model's Dense layer '{module}' is neither in '{shards[0].Name}' nor in '{file}', where sentence-transformers keeps it"
                    + (File.Exists(Path.Combine(folder, module, "pytorch_model.bin")) ? " (this folder has a pytorch_model.bin there, which is not read: convert it to safetensors)" : ""), file);
            shards.Add(Shard.OpenModule(file, prefix));
        }
    }

    /// <summary>The index and the shards' headers must name the same tensors in the same places.</summary>
    private static void CheckWeightMap(SafeTensorsShardIndex index, List<Shard> shards)
    {
        foreach (Shard shard in shards)
        {
            foreach (SafeTensorsEntry entry in shard.Header.Entries)
            {
                if (!index.WeightMap.TryGetValue(entry.Name, out string? listed))
                    throw SafeTensorsShardIndex.Invalid(index.Path, $"shard '{shard.Name}' holds tensor '{entry.Name}', which the weight_map does not list");
                if (listed != shard.FileName)
                    throw SafeTensorsShardIndex.Invalid(index.Path, $"the weight_map puts tensor '{entry.Name}' in '{listed}', but shard '{shard.Name}' holds it");
            }
        }
        var byFile = shards.ToDictionary(shard => shard.FileName, StringComparer.Ordinal);
        foreach ((string name, string file) in index.WeightMap)
        {
            if (!byFile[file].Names.Contains(name))
                throw SafeTensorsShardIndex.Invalid(index.Path, $"the weight_map puts tensor '{name}' in '{file}', whose header does not have it");
        }
    }

    /// <summary>Matches and checks every header entry against the table, then reads the data.</summary>
    private static SafeTensorsLoadReport Load(string checkpoint, IReadOnlyList<Shard> shards, IReadOnlyList<ParameterTensor> tensors,
        CheckpointTable table, ParameterSpans buffer, CheckpointFamilyRules rules, Action<int>? written)
    {
        List<Planned> plan = Plan(checkpoint, shards, tensors, table, rules, out List<SafeTensorsSkippedTensor> skipped);

        var scratch = new TransposedTensors.Scratch();
        foreach (Planned read in plan) // in file order
        {
            ParameterTensor tensor = tensors[read.Tensor];
            Span<float> destination = buffer[tensor];
            long position = read.Shard.Header.DataStart + read.Entry.Begin;
            if (read.Scale is { } scale)
                SafeTensors.ReadInt8(read.Shard.Source, read.Shard.Header, read.Entry, scale.Shard.Source, scale.Shard.Header, scale.Entry, tensor, destination);
            else if (tensor.StoredTransposed)
                TransposedTensors.Read(read.Shard.Source, position, read.Entry, destination, tensor.Shape[0], tensor.Shape[1], scratch);
            else
                SafeTensors.ReadTensor(read.Shard.Source, position, read.Entry, destination, ref scratch.Bytes);
            written?.Invoke(read.Tensor);
        }

        var loaded = new List<string>(tensors.Count);
        foreach (ParameterTensor tensor in tensors) loaded.Add(tensor.Name);
        return new SafeTensorsLoadReport(loaded, [], [], skipped);
    }

    /// <summary>
    /// Pairs each table tensor with its header entry and classifies every other entry (buffer, unused head, tied copy);
    /// checks names, dtypes, shapes, sizes, ranges and overlaps. Returns the reads sorted by shard and data offset.
    /// </summary>
    private static List<Planned> Plan(string checkpoint, IReadOnlyList<Shard> shards, IReadOnlyList<ParameterTensor> tensors,
        CheckpointTable table, CheckpointFamilyRules rules, out List<SafeTensorsSkippedTensor> skipped)
    {
        var found = new Planned?[tensors.Count];
        var scaleOf = new (int ShardIndex, Shard Shard, SafeTensorsEntry Entry)?[tensors.Count];
        var seen = new Dictionary<string, (Shard Shard, string Name)>(StringComparer.Ordinal);
        // The first tied copy of each table, and where its skip was recorded.
        var copyOf = new Dictionary<int, (int ShardIndex, Shard Shard, SafeTensorsEntry Entry, int Skip)>();
        var unexpected = new List<string>();
        skipped = [];
        for (int s = 0; s < shards.Count; s++)
        {
            Shard shard = shards[s];
            foreach (SafeTensorsEntry entry in shard.Header.Entries)
            {
                if (TrainingCheckpoint.IsStateName(entry.Name))
                {
                    // A training checkpoint's optimizer state: the parameters beside it load as from any other file.
                    skipped.Add(Skip(shard, entry, SafeTensorsSkipReason.TrainingState));
                    continue;
                }
                string key = rules.FileKeyOf(entry.Name);
                if (!seen.TryAdd(key, (shard, entry.Name)))
                {
                    (Shard first, string firstName) = seen[key];
                    throw SafeTensors.Invalid(shard.Name, entry.Name,
                        $"it is the same tensor as '{firstName}'{(first == shard ? "" : $" in '{first.Name}'")} once the {rules.Family} prefix '{rules.Prefix}' is optional and legacy names are renamed");
                }

                if (table.TryFind(key, out int t))
                {
                    found[t] = new Planned(t, s, shard, entry);
                }
                else if (key.EndsWith(SafeTensors.Int8ScaleSuffix, StringComparison.Ordinal)
                    && table.TryFind(key[..^SafeTensors.Int8ScaleSuffix.Length], out int scaled))
                {
                    // The scales of an 8-bit matrix (TransformerModel.Save with WeightType.Int8), paired once all are seen.
                    scaleOf[scaled] = (s, shard, entry);
                }
                else if (rules.FindBuffer(key, out string layer) is { } bufferRule)
                {
                    if (Array.IndexOf(bufferRule.DTypes, entry.DType) < 0 || !bufferRule.Accepts(entry.Shape, table, layer))
                        throw SafeTensors.Invalid(shard.Name, entry.Name,
                            $"it has the name of a {rules.Family} buffer, which must be {bufferRule.ShapeDescription} of {string.Join(", ", bufferRule.DTypes)}, but it is {entry.ShapeText} {entry.DType}");
                    skipped.Add(Skip(shard, entry, SafeTensorsSkipReason.Buffer));
                }
                else if (rules.IsUnusedHead(key))
                {
                    RequireFloat(shard, entry);
                    skipped.Add(Skip(shard, entry, SafeTensorsSkipReason.UnusedHead));
                }
                else if (TiedCopyOf(rules, key) is { } tied && table.TryFind(tied.Embedding, out int embedding))
                {
                    ParameterTensor tiedTo = tensors[embedding];
                    if (!SafeTensors.ShapeEquals(entry.Shape, tiedTo.Shape))
                        throw SafeTensors.Invalid(shard.Name, entry.Name,
                            $"the model ties it to '{tiedTo.Name}' {tiedTo.ShapeText} and has no '{entry.Name}'; a copy of the embedding would be {tiedTo.ShapeText}, but the file's is {entry.ShapeText}");
                    RequireFloat(shard, entry);
                    skipped.Add(Skip(shard, entry, SafeTensorsSkipReason.TiedCopy));
                    copyOf.TryAdd(embedding, (s, shard, entry, skipped.Count - 1));
                }
                else
                {
                    unexpected.Add($"{entry.Name} {entry.ShapeText} {entry.DType} in '{shard.Name}'");
                }
            }
        }

        // A file may hold the shared table under one of its users' names only (T5's encoder.embed_tokens.weight, say,
        // where the deduplication that dropped copies kept another name than the model's): the copy is the table.
        var usedCopies = new List<int>();
        foreach ((int embedding, (int ShardIndex, Shard Shard, SafeTensorsEntry Entry, int Skip) copy) in copyOf)
        {
            if (found[embedding] is not null) continue;
            found[embedding] = new Planned(embedding, copy.ShardIndex, copy.Shard, copy.Entry);
            usedCopies.Add(copy.Skip);
        }
        usedCopies.Sort();
        for (int i = usedCopies.Count - 1; i >= 0; i--) skipped.RemoveAt(usedCopies[i]);

        var missing = new List<string>();
        for (int t = 0; t < tensors.Count; t++)
        {
            if (found[t] is null) missing.Add($"{tensors[t].Name} {StoredShapeText(tensors[t])} F32");
            else if (found[t]!.Value.Entry.DType == "I8") found[t] = found[t]!.Value with { Scale = MatchInt8(found[t]!.Value, tensors[t], scaleOf[t]) };
            else if (scaleOf[t] is { } orphan) unexpected.Add($"{orphan.Entry.Name} {orphan.Entry.ShapeText} {orphan.Entry.DType} in '{orphan.Shard.Name}'");
        }
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidDataException($"{rules.Family} checkpoint '{checkpoint}': the tensors do not match the model"
                + (missing.Count == tensors.Count ? $" (none of its {tensors.Count} tensors is in the checkpoint: is it a {rules.Family} checkpoint?)" : "")
                + ". " + Listing("Missing from the checkpoint", missing) + Listing("Not in the model", unexpected));

        var plan = new List<Planned>(tensors.Count);
        foreach (Planned? match in found)
        {
            Planned read = match!.Value;
            ParameterTensor tensor = tensors[read.Tensor];
            SafeTensorsEntry entry = read.Entry;
            int elementSize = read.Scale is not null ? sizeof(sbyte) : SafeTensors.ElementSize(entry.DType);
            if (elementSize == 0)
                throw SafeTensors.Invalid(read.Shard.Name, entry.Name, $"dtype {entry.DType} cannot be loaded into '{tensor.Name}' (only F32, F16, BF16, and I8 with its {SafeTensors.Int8ScaleSuffix} tensor, can)");
            if (!StoredShapeEquals(entry.Shape, tensor))
                throw SafeTensors.Invalid(read.Shard.Name, entry.Name,
                    $"its shape is {entry.ShapeText} in the file, but the model's '{tensor.Name}' {tensor.ShapeText} needs {StoredShapeText(tensor)}"
                    + (tensor.StoredTransposed ? " (it is stored transposed, [in, out]: the model's shape reversed)" : ""));
            long expectedBytes = (long)tensor.Length * elementSize;
            if (entry.End - entry.Begin != expectedBytes)
                throw SafeTensors.Invalid(read.Shard.Name, entry.Name, $"data_offsets [{entry.Begin}, {entry.End}] hold {entry.End - entry.Begin} bytes, but shape {entry.ShapeText} of {entry.DType} needs {expectedBytes}");
            CheckInsideData(read.Shard, entry);
            plan.Add(read);
            if (read.Scale is { } scale) plan.Add(new Planned(-1, scale.ShardIndex, scale.Shard, scale.Entry)); // for the overlap check only
        }

        plan.Sort(static (a, b) => a.ShardIndex != b.ShardIndex ? a.ShardIndex.CompareTo(b.ShardIndex) : a.Entry.Begin.CompareTo(b.Entry.Begin));
        for (int i = 1; i < plan.Count; i++)
        {
            Planned previous = plan[i - 1], current = plan[i];
            if (previous.Shard == current.Shard && current.Entry.Begin < previous.Entry.End)
                throw SafeTensors.Invalid(current.Shard.Name, current.Entry.Name,
                    $"its data [{current.Entry.Begin}, {current.Entry.End}] overlaps tensor '{previous.Entry.Name}' [{previous.Entry.Begin}, {previous.Entry.End}]");
        }
        plan.RemoveAll(static read => read.Tensor < 0);
        return plan;
    }

    /// <summary>
    /// The scales of an I8 entry, checked: the tensor is a matrix the family stores in its own layout (a transposed one's
    /// blocks of inputs would run down the file's columns, which Save never writes), and its scales are F16
    /// <c>[rows, ⌈cols/32⌉]</c>, inside their shard.
    /// </summary>
    private static (int ShardIndex, Shard Shard, SafeTensorsEntry Entry) MatchInt8(Planned read, ParameterTensor tensor, (int ShardIndex, Shard Shard, SafeTensorsEntry Entry)? scale)
    {
        string file = read.Shard.Name, name = read.Entry.Name;
        if (tensor.Shape.Length != 2)
            throw SafeTensors.Invalid(file, name, $"it is I8 in the file, which only a matrix can be, but '{tensor.Name}' is {tensor.ShapeText} in the model");
        if (tensor.StoredTransposed)
            throw SafeTensors.Invalid(file, name, $"it is I8 in the file, but '{tensor.Name}' is stored transposed ([in, out]), which is read from F32, F16 or BF16 only");
        if (scale is not { } found)
            throw SafeTensors.Invalid(file, name, $"it is I8 in the file but its scales, F16 tensor '{name}{SafeTensors.Int8ScaleSuffix}', are missing");
        long rows = tensor.Shape[0], blocks = Kernels.QuantizedMatMul.BlocksPerRow(tensor.Shape[1]);
        SafeTensorsEntry entry = found.Entry;
        if (entry.DType != "F16" || entry.Shape.Length != 2 || entry.Shape[0] != rows || entry.Shape[1] != blocks)
            throw SafeTensors.Invalid(found.Shard.Name, entry.Name, $"the scales of I8 tensor '{name}' {tensor.ShapeText} must be F16 [{rows}, {blocks}], but are {entry.DType} {entry.ShapeText}");
        if (entry.End - entry.Begin != rows * blocks * sizeof(ushort))
            throw SafeTensors.Invalid(found.Shard.Name, entry.Name, $"data_offsets [{entry.Begin}, {entry.End}] hold {entry.End - entry.Begin} bytes, but shape {entry.ShapeText} of F16 needs {rows * blocks * sizeof(ushort)}");
        CheckInsideData(found.Shard, entry);
        return found;
    }

    /// <summary>A skipped tensor is not read, but its entry must still describe data inside the file: a damaged file is refused whatever is read from it.</summary>
    private static SafeTensorsSkippedTensor Skip(Shard shard, SafeTensorsEntry entry, SafeTensorsSkipReason reason)
    {
        int elementSize = StoredElementSize(entry.DType);
        if (elementSize == 0)
            throw SafeTensors.Invalid(shard.Name, entry.Name, $"dtype {entry.DType} is not a safetensors dtype");
        long elements = 1;
        foreach (long size in entry.Shape)
        {
            if (size != 0 && elements > long.MaxValue / elementSize / size)
                throw SafeTensors.Invalid(shard.Name, entry.Name, $"shape {entry.ShapeText} is too large for any file");
            elements *= size;
        }
        if (entry.End - entry.Begin != elements * elementSize)
            throw SafeTensors.Invalid(shard.Name, entry.Name, $"data_offsets [{entry.Begin}, {entry.End}] hold {entry.End - entry.Begin} bytes, but shape {entry.ShapeText} of {entry.DType} needs {elements * elementSize}");
        CheckInsideData(shard, entry);
        return new SafeTensorsSkippedTensor(entry.Name, entry.Shape, entry.DType, reason, shard.Name);
    }

    private static void RequireFloat(Shard shard, SafeTensorsEntry entry)
    {
        if (SafeTensors.ElementSize(entry.DType) == 0)
            throw SafeTensors.Invalid(shard.Name, entry.Name, $"dtype {entry.DType} is not a weight's (F32, F16 or BF16)");
    }

    private static void CheckInsideData(Shard shard, SafeTensorsEntry entry)
    {
        if (entry.End > shard.Header.DataLength)
            throw SafeTensors.Invalid(shard.Name, entry.Name, $"data_offsets [{entry.Begin}, {entry.End}] run past the end of the data ({shard.Header.DataLength} bytes); the file is truncated");
    }

    /// <summary>Bytes per element of every safetensors dtype, or 0 for an unknown one.</summary>
    private static int StoredElementSize(string dtype) => dtype switch
    {
        "BOOL" or "U8" or "I8" or "F8_E4M3" or "F8_E5M2" => 1,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "F32" or "I32" or "U32" => 4,
        "F64" or "I64" or "U64" => 8,
        _ => 0,
    };

    /// <summary>The shape a file holds <paramref name="tensor"/> in: its own, or reversed when <see cref="ParameterTensor.StoredTransposed"/>.</summary>
    private static bool StoredShapeEquals(long[] fileShape, ParameterTensor tensor)
    {
        if (!tensor.StoredTransposed) return SafeTensors.ShapeEquals(fileShape, tensor.Shape);
        return fileShape is [var rows, var columns] && rows == tensor.Shape[1] && columns == tensor.Shape[0];
    }

    private static string StoredShapeText(ParameterTensor tensor) =>
        tensor.StoredTransposed ? $"[{tensor.Shape[1]}, {tensor.Shape[0]}]" : tensor.ShapeText;

    /// <summary><c>Title (n): a; b; ….</c>, at most 50 items, or nothing for an empty list.</summary>
    /// <summary>The tied copy <paramref name="key"/> names in the family's rules, or null.</summary>
    private static TiedCopy? TiedCopyOf(CheckpointFamilyRules rules, string key)
    {
        foreach (TiedCopy copy in rules.TiedCopies)
            if (copy.Copy == key) return copy;
        return null;
    }

    private static string Listing(string title, List<string> items)
    {
        if (items.Count == 0) return "";
        const int shown = 50;
        var text = new StringBuilder().Append($"{title} ({items.Count}): ").AppendJoin("; ", items.Take(shown));
        if (items.Count > shown) text.Append($"; and {items.Count - shown} more");
        return text.Append(". ").ToString();
    }

    /// <summary>A table tensor's entry: which shard (by position in the load order) and where.</summary>
    /// <summary>A tensor's entry, and for an 8-bit matrix the entry of its scales (which may lie in another shard).</summary>
    private readonly record struct Planned(int Tensor, int ShardIndex, Shard Shard, SafeTensorsEntry Entry, (int ShardIndex, Shard Shard, SafeTensorsEntry Entry)? Scale = null);

    /// <summary>One safetensors file of the checkpoint, open, with its header read and checked.</summary>
    private sealed class Shard : IDisposable
    {
        private readonly SafeFileHandle? _file;
        private HashSet<string>? _names;

        private Shard(SafeTensorsSource source, SafeTensorsHeader header, string fileName, SafeFileHandle? file)
        {
            Source = source;
            Header = header;
            FileName = fileName;
            _file = file;
        }

        public SafeTensorsSource Source { get; }
        public SafeTensorsHeader Header { get; }

        /// <summary>What the index calls it (for a single file or a stream, its path or name).</summary>
        public string FileName { get; }

        /// <summary>What messages call it: its path.</summary>
        public string Name => Source.Name;

        public HashSet<string> Names => _names ??= new HashSet<string>(Header.Entries.Select(entry => entry.Name), StringComparer.Ordinal);

        public static Shard Open(string path) => Open(path, path);

        /// <summary>A module's file, whose tensors the model names with <paramref name="prefix"/> before the file's names.</summary>
        public static Shard OpenModule(string path, string prefix)
        {
            Shard shard = Open(path, path);
            return new Shard(shard.Source, shard.Header.WithNamePrefix(prefix), path, shard._file);
        }

        public static Shard Open(SafeTensorsShardIndex index, string shard)
        {
            string path = index.ShardPath(shard);
            if (!File.Exists(path))
            {
                string tensor = index.WeightMap.First(entry => entry.Value == shard).Key;
                throw SafeTensorsShardIndex.Invalid(index.Path, $"the weight_map puts tensor '{tensor}' (and every tensor listed with it) in '{shard}', but '{path}' does not exist");
            }
            return Open(path, shard);
        }

        private static Shard Open(string path, string fileName)
        {
            SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            try
            {
                var source = new SafeTensorsSource(file, path);
                return new Shard(source, SafeTensorsHeader.Read(source), fileName, file);
            }
            catch
            {
                file.Dispose();
                throw;
            }
        }

        public static Shard From(SafeTensorsSource source) => new(source, SafeTensorsHeader.Read(source), source.Name, file: null);

        public void Dispose() => _file?.Dispose();
    }
}
