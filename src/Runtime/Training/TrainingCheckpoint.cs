using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using Microsoft.Win32.SafeHandles;

namespace TransformerGen;

/// <summary>
/// A checkpoint that holds everything a training run needs to continue as if it had never stopped: the parameters, the
/// optimizer's buffers and step count, the random states of dropout and of data sampling, and the step number.
/// </summary>
/// <remarks>
/// <para><b>Format: one safetensors file.</b> The parameters are written exactly as <see cref="TransformerModel.Save(string, System.Collections.Generic.IReadOnlyDictionary{string, string}?)"/>
/// writes them (same names, layout and <c>format: pt</c>), so any safetensors reader, <see cref="TransformerModel.Load(string)"/>
/// and <c>ForInference</c> read the file as a model. Beside them, each optimizer buffer is stored per parameter tensor
/// under <c>__training__.{state}.{parameter}</c> with the parameter's shape (<c>__training__.exp_avg.lm_head.weight</c>:
/// PyTorch's names for AdamW's and SGD's state), and the scalars go into <c>__metadata__</c> under <c>training.*</c>:
/// the step, the optimizer's algorithm, settings, step count and learning rate, and the two random states as 32 hex digits.
/// The model loaders skip the <c>__training__.</c> tensors (they are listed as <see cref="SafeTensorsSkipReason.TrainingState"/>).</para>
/// <para>Why one file and not parameters plus a state file: a file is replaced atomically by writing it beside the target
/// and renaming it, but two files cannot be replaced together. A kill between the two renames would leave parameters of
/// one step beside optimizer state of another, and the resumed run would silently differ. One file is whole or absent:
/// a kill at any moment leaves either the previous checkpoint or the new one. The cost is a file three times the size of
/// the parameters (with AdamW), which is what the state is.</para>
/// <para>Learning-rate schedules are functions of the optimizer's step (<see cref="ILearningRateSchedule.At"/>), so the
/// restored step count is the schedule's position.</para>
/// </remarks>
public static class TrainingCheckpoint
{
    /// <summary>The prefix of the tensors that hold optimizer state; no parameter may start with it.</summary>
    public const string StatePrefix = "__training__.";

    /// <summary>The prefix of the metadata keys that a training checkpoint writes (and that callers' metadata may not use).</summary>
    public const string MetadataPrefix = "training.";

    private const string VersionKey = "training.version";
    private const string Version = "1";
    private const string StepKey = "training.step";
    private const string AlgorithmKey = "training.optimizer";
    private const string OptimizerStepKey = "training.optimizer.step";
    private const string LearningRateKey = "training.optimizer.lr";
    private const string SettingPrefix = "training.optimizer.setting.";
    private const string DropoutRngKey = "training.rng.dropout";
    private const string DataRngKey = "training.rng.data";

    /// <summary>True when <paramref name="name"/> is the name of a training checkpoint's optimizer-state tensor.</summary>
    internal static bool IsStateName(string name) => name.StartsWith(StatePrefix, StringComparison.Ordinal);

    /// <summary>
    /// Writes a training checkpoint of <paramref name="model"/> and <paramref name="optimizer"/> after <paramref name="step"/>
    /// steps, atomically: written beside <paramref name="path"/> and renamed over it, so an interrupted save leaves the
    /// previous file as it was.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="model">The model being trained (built for training).</param>
    /// <param name="optimizer">Its optimizer; <see cref="AdamW"/> and <see cref="Sgd"/> can be checkpointed (any <see cref="ICheckpointableOptimizer"/>).</param>
    /// <param name="step">The training loop's step number (the number of steps done), at least 0.</param>
    /// <param name="dataRng">The generator that samples the training data, if the run has one: its state is saved too.</param>
    /// <param name="metadata">The caller's own strings for <c>__metadata__</c> (an alphabet, the recent losses); keys may not start with <c>training.</c>.</param>
    /// <exception cref="ArgumentException">The optimizer cannot be checkpointed or is not the model's, or a metadata key is reserved.</exception>
    /// <exception cref="InvalidOperationException">The model was built for inference.</exception>
    public static void Save(string path, TransformerModel model, IOptimizer optimizer, long step, Rng? dataRng = null, IReadOnlyDictionary<string, string>? metadata = null) =>
        Save(path, model, optimizer, step, dataRng, metadata, beforeCommit: null);

    /// <summary>As the public overload; <paramref name="beforeCommit"/> runs with the written temporary file's path just before the rename (tests).</summary>
    internal static void Save(string path, TransformerModel model, IOptimizer optimizer, long step, Rng? dataRng,
        IReadOnlyDictionary<string, string>? metadata, Action<string>? beforeCommit)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(model);
        ICheckpointableOptimizer state = Checkpointable(optimizer);
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "the step number is at least 0");
        if (model.Use != ModelUse.Training)
            throw new InvalidOperationException($"this {model.Layout.Name} was built for inference; a training checkpoint needs the model that is being trained");
        IReadOnlyList<ParameterTensor> parameters = model.ParameterTensors;
        CheckBuffers(model, state);

        var header = new Dictionary<string, string>(StringComparer.Ordinal);
        if (metadata is not null)
        {
            foreach (KeyValuePair<string, string> entry in metadata)
            {
                if (entry.Key.StartsWith(MetadataPrefix, StringComparison.Ordinal))
                    throw new ArgumentException($"metadata key '{entry.Key}' starts with '{MetadataPrefix}', which the training checkpoint's own entries use", nameof(metadata));
                header[entry.Key] = entry.Value;
            }
        }
        header["format"] = "pt";
        header["model"] = model.Layout.Name;
        header[VersionKey] = Version;
        header[StepKey] = step.ToString(CultureInfo.InvariantCulture);
        header[AlgorithmKey] = state.Algorithm;
        header[OptimizerStepKey] = state.StepCount.ToString(CultureInfo.InvariantCulture);
        header[LearningRateKey] = state.LearningRate.ToString(CultureInfo.InvariantCulture);
        foreach (KeyValuePair<string, string> setting in state.Settings) header[SettingPrefix + setting.Key] = setting.Value;
        header[DropoutRngKey] = model.DropoutState.ToString();
        if (dataRng is not null) header[DataRngKey] = dataRng.State.ToString();

        // The parameters first, as the model's own Save writes them; then each state buffer, tensor by tensor.
        IReadOnlyList<string> stateNames = state.StateNames;
        var table = new List<ParameterTensor>(parameters.Count * (1 + stateNames.Count));
        table.AddRange(parameters);
        foreach (string stateName in stateNames)
            foreach (ParameterTensor tensor in parameters)
                table.Add(new ParameterTensor(StateName(stateName, tensor), tensor.Shape.ToArray(), tensor.Offset));

        int count = parameters.Count;
        SafeTensors.Save(path, table, model.Parameters,
            index => index < count
                ? model.Parameters.Slice(table[index].Offset, table[index].Length)
                : state.State(index / count - 1).Slice(table[index].Offset, table[index].Length),
            header, beforeCommit, output: null, storedLayout: model.Layout.Family != CheckpointFamily.Native);
    }

    /// <summary>
    /// Restores a training checkpoint written by <see cref="Save(string, TransformerModel, IOptimizer, long, Rng?, IReadOnlyDictionary{string, string}?)"/>
    /// into <paramref name="model"/>, <paramref name="optimizer"/> and <paramref name="dataRng"/>: continuing the loop after
    /// the returned <see cref="TrainingCheckpointInfo.Step"/> gives the parameters, bit for bit, of a run that never stopped.
    /// </summary>
    /// <remarks>
    /// Everything is checked before anything is changed: the file's header, that it is a training checkpoint, that the
    /// optimizer is of the same algorithm with the same settings, every tensor's name, shape and extent, and the random
    /// states. Only an I/O error while the data is read (the file changing underneath) can leave things half restored.
    /// </remarks>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="model">A model of the same declaration, built for training.</param>
    /// <param name="optimizer">A new optimizer of the model, with the settings of the run that wrote the checkpoint.</param>
    /// <param name="dataRng">The generator that samples the training data; the checkpoint must then hold its state.</param>
    /// <returns>The step number and the whole metadata (the caller's own entries included).</returns>
    /// <exception cref="InvalidDataException">The file is not a training checkpoint of this model and optimizer; the message says what differs.</exception>
    public static TrainingCheckpointInfo Load(string path, TransformerModel model, IOptimizer optimizer, Rng? dataRng = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(model);
        ICheckpointableOptimizer state = Checkpointable(optimizer);
        if (model.Use != ModelUse.Training)
            throw new InvalidOperationException($"this {model.Layout.Name} was built for inference; a training checkpoint restores into a model built for training");
        CheckBuffers(model, state);
        SafeTensors.RequireLittleEndian();

        using SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var source = new SafeTensorsSource(file, path);
        SafeTensorsHeader header = SafeTensorsHeader.Read(source);
        IReadOnlyDictionary<string, string> metadata = header.Metadata;

        if (!metadata.TryGetValue(VersionKey, out string? version))
            throw SafeTensors.Invalid(path, "it holds parameters only, no training state (it was written by Save, not TrainingCheckpoint.Save); load it with Load to start a new run from its parameters");
        if (version != Version)
            throw SafeTensors.Invalid(path, $"it is a training checkpoint of version {version}; this runtime reads version {Version}");
        long step = ReadLong(path, metadata, StepKey);
        string algorithm = Read(path, metadata, AlgorithmKey);
        if (algorithm != state.Algorithm)
            throw SafeTensors.Invalid(path, $"it holds the state of {algorithm}, but the optimizer is {state.Algorithm}");
        foreach (KeyValuePair<string, string> setting in state.Settings)
        {
            string written = Read(path, metadata, SettingPrefix + setting.Key);
            if (written != setting.Value)
                throw SafeTensors.Invalid(path, $"it was written by {algorithm} with {setting.Key} = {written}, but this optimizer has {setting.Key} = {setting.Value}; resuming would not continue the same run");
        }
        long optimizerStep = ReadLong(path, metadata, OptimizerStepKey);
        float learningRate = ReadFloat(path, metadata, LearningRateKey);
        RngState dropout = ReadRng(path, metadata, DropoutRngKey);
        RngState? data = null;
        if (dataRng is not null)
        {
            if (!metadata.ContainsKey(DataRngKey))
                throw SafeTensors.Invalid(path, "it holds no state of a data generator (it was saved without one), but one was given to restore");
            data = ReadRng(path, metadata, DataRngKey);
        }

        // Every state tensor the optimizer needs, checked as the parameter loader checks its own; nothing else may carry the prefix.
        IReadOnlyList<ParameterTensor> parameters = model.ParameterTensors;
        IReadOnlyList<string> stateNames = state.StateNames;
        var byName = new Dictionary<string, SafeTensorsEntry>(StringComparer.Ordinal);
        foreach (SafeTensorsEntry entry in header.Entries)
            if (IsStateName(entry.Name)) byName.Add(entry.Name, entry);
        var planned = new SafeTensorsEntry[stateNames.Count, parameters.Count];
        var missing = new List<string>();
        for (int s = 0; s < stateNames.Count; s++)
        {
            for (int t = 0; t < parameters.Count; t++)
            {
                ParameterTensor tensor = parameters[t];
                string name = StateName(stateNames[s], tensor);
                if (!byName.Remove(name, out SafeTensorsEntry? entry))
                {
                    missing.Add(name);
                    continue;
                }
                if (entry.DType != "F32")
                    throw SafeTensors.Invalid(path, name, $"optimizer state is stored as F32, but this is {entry.DType}");
                if (!SafeTensors.ShapeEquals(entry.Shape, tensor.Shape))
                    throw SafeTensors.Invalid(path, name, $"its shape is {entry.ShapeText}, but the parameter '{tensor.Name}' is {tensor.ShapeText}");
                if (entry.End - entry.Begin != (long)tensor.Length * sizeof(float) || entry.End > header.DataLength)
                    throw SafeTensors.Invalid(path, name, $"data_offsets [{entry.Begin}, {entry.End}] do not hold {tensor.Length} floats inside the data ({header.DataLength} bytes); the file is damaged or truncated");
                planned[s, t] = entry;
            }
        }
        if (missing.Count > 0)
            throw SafeTensors.Invalid(path, $"the {algorithm} state lacks {missing.Count} tensor(s): {string.Join(", ", missing)}");
        if (byName.Count > 0)
            throw SafeTensors.Invalid(path, $"it holds optimizer state this {algorithm} does not keep: {string.Join(", ", byName.Keys)}");

        // The parameters, through the model's own loader (which checks them, skips the state, and clears inference caches).
        model.Load(path);
        byte[]? scratch = null;
        for (int s = 0; s < stateNames.Count; s++)
        {
            Span<float> buffer = state.State(s);
            buffer.Clear(); // elements between tensors hold no state (their gradient is always 0)
            for (int t = 0; t < parameters.Count; t++)
            {
                SafeTensorsEntry entry = planned[s, t];
                SafeTensors.ReadTensor(source, header.DataStart + entry.Begin, entry, buffer.Slice(parameters[t].Offset, parameters[t].Length), ref scratch);
            }
        }
        state.RestoreStepCount(optimizerStep);
        state.LearningRate = learningRate;
        model.DropoutState = dropout;
        if (data is { } dataState) dataRng!.State = dataState;
        return new TrainingCheckpointInfo(step, optimizerStep, metadata);
    }

    /// <summary>
    /// True when the file at <paramref name="path"/> is a training checkpoint (its header says so); false for a file of
    /// parameters only. Reads only the header.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a safetensors file.</exception>
    public static bool IsTrainingCheckpoint(string path) => SafeTensors.ReadMetadata(path).ContainsKey(VersionKey);

    private static string StateName(string state, ParameterTensor tensor) => StatePrefix + state + "." + tensor.Name;

    private static ICheckpointableOptimizer Checkpointable(IOptimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        return optimizer as ICheckpointableOptimizer
            ?? throw new ArgumentException($"{optimizer.GetType().Name} does not implement ICheckpointableOptimizer, so its state cannot be saved", nameof(optimizer));
    }

    private static void CheckBuffers(TransformerModel model, ICheckpointableOptimizer state)
    {
        int length = model.Parameters.Length;
        IReadOnlyList<string> names = state.StateNames;
        for (int s = 0; s < names.Count; s++)
            if (state.State(s).Length != length)
                throw new ArgumentException($"the optimizer's {names[s]} holds {state.State(s).Length} floats but {model.Layout.Name} has {length} parameters: it is not this model's optimizer", "optimizer");
    }

    private static string Read(string path, IReadOnlyDictionary<string, string> metadata, string key) =>
        metadata.TryGetValue(key, out string? value) ? value : throw SafeTensors.Invalid(path, $"the training checkpoint's metadata lacks '{key}'");

    private static long ReadLong(string path, IReadOnlyDictionary<string, string> metadata, string key)
    {
        string text = Read(path, metadata, key);
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value)
            ? value
            : throw SafeTensors.Invalid(path, $"metadata '{key}' is '{text}', not a step count");
    }

    private static float ReadFloat(string path, IReadOnlyDictionary<string, string> metadata, string key)
    {
        string text = Read(path, metadata, key);
        return float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float value) && value >= 0f && float.IsFinite(value)
            ? value
            : throw SafeTensors.Invalid(path, $"metadata '{key}' is '{text}', not a learning rate");
    }

    private static RngState ReadRng(string path, IReadOnlyDictionary<string, string> metadata, string key)
    {
        string text = Read(path, metadata, key);
        try
        {
            RngState value = RngState.Parse(text);
            if ((value.S0 | value.S1 | value.S2 | value.S3) == 0) throw new FormatException("all zero");
            return value;
        }
        catch (FormatException e)
        {
            throw SafeTensors.Invalid(path, $"metadata '{key}' is '{text}', not a generator state (32 hex digits, not all zero)", e);
        }
    }
}

/// <summary>What <see cref="TrainingCheckpoint.Load"/> restored.</summary>
/// <param name="Step">The training loop's step number when the checkpoint was written: continue with step <c>Step + 1</c>.</param>
/// <param name="OptimizerStep">The optimizer's step count (equal to <paramref name="Step"/> unless steps were skipped or accumulated).</param>
/// <param name="Metadata">The whole <c>__metadata__</c> map, the caller's own entries included.</param>
public sealed record TrainingCheckpointInfo(long Step, long OptimizerStep, IReadOnlyDictionary<string, string> Metadata);
