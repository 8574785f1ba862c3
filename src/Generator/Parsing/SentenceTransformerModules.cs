using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace TransformerGen.Generator
{
    /// <summary>
    /// One <c>sentence_transformers.models.Dense</c> module after the pooling: <c>y = activation(x·Wᵀ + b)</c>, its weights
    /// in <c>{Path}/model.safetensors</c> as <c>linear.weight</c> <c>[Out, In]</c> (and <c>linear.bias</c> <c>[Out]</c>), which
    /// the compiled model names <c>{Path}.linear.weight</c>. <see cref="Tanh"/>: <c>torch.nn.modules.activation.Tanh</c>
    /// (the module's default); otherwise <c>Identity</c>.
    /// </summary>
    internal sealed record DenseLayer(string Path, int In, int Out, bool Bias, bool Tanh)
    {
        public string WeightName => Path + ".linear.weight";

        public string BiasName => Path + ".linear.bias";
    }

    /// <summary>
    /// What a sentence-transformers folder says after the transformer, read from the <c>modules.json</c> beside the
    /// <c>config.json</c> and the module configs it points to (<c>1_Pooling/config.json</c>, <c>2_Dense/config.json</c>, …;
    /// the build adds them as additional files, see TransformerGen.targets): the pooling mode, the Dense layers in order,
    /// and whether the embeddings end L2-normalized. A folder without <c>modules.json</c> says nothing, and the
    /// declaration's <c>Pooling</c> stands. Whatever the compiled head cannot compute is a TG0042 naming the file and key.
    /// </summary>
    internal sealed class SentenceTransformerModules
    {
        /// <summary>The compiled head's pooling, when 1_Pooling/config.json fixes it (EnumValues.MeanPooling or FirstToken); null if no file says.</summary>
        public int? Pooling { get; private set; }

        /// <summary>The Dense layers after the pooling, in the pipeline's order.</summary>
        public List<DenseLayer> Dense { get; } = new();

        /// <summary>Whether modules.json was found (the other properties are only meaningful then).</summary>
        public bool Found { get; private set; }

        /// <summary>Whether the pipeline ends with a <c>Normalize</c> module (the compiled head then L2-normalizes; without one it gives the vectors as they are).</summary>
        public bool Normalizes { get; private set; }

        private readonly string _folder;
        private readonly string _folderName;
        private readonly EquatableArray<ConfigText> _files;
        private readonly Action<string, string, string, string> _unsupported;

        private int _width;

        private SentenceTransformerModules(string folder, EquatableArray<ConfigText> files, int width, Action<string, string, string, string> unsupported)
        {
            _width = width;
            _folder = folder;
            _folderName = folder.Substring(folder.LastIndexOf('/') + 1);
            _files = files;
            _unsupported = unsupported;
        }

        /// <summary>
        /// Reads the modules beside <paramref name="configPath"/> among <paramref name="files"/>, for a transformer whose
        /// hidden states are <paramref name="width"/> wide. <paramref name="unsupported"/> takes (file, key, value, why) for
        /// each thing that cannot be compiled.
        /// </summary>
        public static SentenceTransformerModules Read(string configPath, EquatableArray<ConfigText> files, int width, Action<string, string, string, string> unsupported)
        {
            string normalized = Normalize(configPath);
            int slash = normalized.LastIndexOf('/');
            string folder = slash < 0 ? "" : normalized.Substring(0, slash);
            var modules = new SentenceTransformerModules(folder, files, width, unsupported);
            modules.ReadModules();
            return modules;
        }

        private void ReadModules()
        {
            if (Parse("modules.json") is not { } parsed) return;
            Found = true;
            string file = Shown("modules.json");
            if (parsed is not List<object?> list)
            {
                _unsupported(file, "(top level)", "not a list", "modules.json lists the pipeline's modules");
                return;
            }
            bool transformer = false;
            foreach (object? item in list)
            {
                if (item is not List<KeyValuePair<string, object?>> module || Lookup(module, "type") is not string type)
                {
                    _unsupported(file, "(entry)", Text(item), "each module needs a type");
                    continue;
                }
                string path = Lookup(module, "path") as string ?? "";
                string name = type.Substring(type.LastIndexOf('.') + 1);
                if (Normalizes)
                {
                    _unsupported(file, "type", type, "a module after Normalize is not compiled (the compiled head ends with the L2 normalization)");
                    continue;
                }
                switch (name)
                {
                    case "Transformer":
                        if (transformer || path.Length > 0) _unsupported(file, "path", path, "the transformer must be the first module, at the folder's root (the config.json compiled)");
                        transformer = true;
                        break;
                    case "Pooling":
                        if (Dense.Count > 0 || Pooling is not null) _unsupported(file, "type", type, "one pooling module, before any Dense layer, is compiled");
                        ReadPooling(path);
                        break;
                    case "Dense":
                        if (Pooling is null) _unsupported(file, "type", type, "a Dense module is compiled only after the pooling");
                        ReadDense(path);
                        break;
                    case "Normalize":
                        Normalizes = true;
                        break;
                    default:
                        _unsupported(file, "type", type, "the compiled sentence-embedding head has a Transformer, a Pooling (mean or CLS), Dense layers and a Normalize");
                        break;
                }
            }
            if (!transformer) _unsupported(file, "type", "(none)", "the pipeline must start with the Transformer module that config.json describes");
        }

        private void ReadPooling(string path)
        {
            string file = path + "/config.json";
            if (ParseObject(file) is not { } keys) return;
            string shown = Shown(file);
            bool Flag(string key) => Lookup(keys, key) is true;
            bool mean = Flag("pooling_mode_mean_tokens"), cls = Flag("pooling_mode_cls_token");
            foreach (string other in new[] { "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken" })
                if (Flag(other)) _unsupported(shown, other, "true", "the compiled head pools by the mean of the non-padding tokens or by the first token only");
            if (mean == cls) _unsupported(shown, "pooling_mode_mean_tokens", mean ? "true (with pooling_mode_cls_token)" : "false",
                "exactly one of pooling_mode_mean_tokens and pooling_mode_cls_token is compiled");
            if (Lookup(keys, "include_prompt") is false) _unsupported(shown, "include_prompt", "false", "pooling that leaves the prompt's tokens out is not implemented");
            Pooling = cls && !mean ? EnumValues.FirstToken : EnumValues.MeanPooling;
        }

        private void ReadDense(string path)
        {
            string file = path + "/config.json";
            if (ParseObject(file) is not { } keys) return;
            string shown = Shown(file);
            int Size(string key)
            {
                if (Lookup(keys, key) is double d && d == Math.Floor(d) && d >= 1 && d <= int.MaxValue) return (int)d;
                _unsupported(shown, key, Text(Lookup(keys, key)), "a positive integer is expected");
                return 1;
            }
            int inputs = Size("in_features"), outputs = Size("out_features");
            if (inputs != _width) _unsupported(shown, "in_features", inputs.ToString(CultureInfo.InvariantCulture), $"the module before it gives {_width} features");
            _width = outputs;
            bool bias = Lookup(keys, "bias") is not false;
            // sentence-transformers writes the activation's class path; Tanh is the module's default when none is saved.
            string activation = Lookup(keys, "activation_function") as string ?? "torch.nn.modules.activation.Tanh";
            bool tanh = activation == "torch.nn.modules.activation.Tanh";
            if (!tanh && activation != "torch.nn.modules.linear.Identity")
                _unsupported(shown, "activation_function", activation, "a Dense layer's activation is compiled for Identity and Tanh");
            Dense.Add(new DenseLayer(path, inputs, outputs, bias, tanh));
        }

        private List<KeyValuePair<string, object?>>? ParseObject(string relative)
        {
            object? parsed = Parse(relative);
            if (parsed is List<KeyValuePair<string, object?>> keys) return keys;
            if (parsed is not null || Found && !Exists(relative))
                _unsupported(Shown(relative), "(file)", parsed is null ? "not part of the build" : "not an object",
                    parsed is null
                        ? "modules.json names it; the build adds the folder's module configs beside config.json as additional files, so the file is missing from the folder"
                        : "a module's config.json is a JSON object");
            return null;
        }

        private object? Parse(string relative)
        {
            ConfigText? file = Find(relative);
            if (file is null) return null;
            try
            {
                return MiniJson.Parse(file.Text ?? "");
            }
            catch (FormatException e)
            {
                _unsupported(Shown(relative), "(file)", "unreadable", e.Message);
                return null;
            }
        }

        private bool Exists(string relative) => Find(relative) is not null;

        private ConfigText? Find(string relative)
        {
            string wanted = _folder.Length == 0 ? relative : _folder + "/" + relative;
            return _files.FirstOrDefault(f => string.Equals(Normalize(f.Path), wanted, StringComparison.OrdinalIgnoreCase));
        }

        private string Shown(string relative) => (_folderName.Length == 0 ? "" : _folderName + "/") + relative;

        /// <summary>
        /// The path with '/' separators and its "." and ".." steps resolved: a config named through "../" (a TransformerConfig
        /// of another project's folder) and the module files the build adds by their full paths must compare equal.
        /// </summary>
        private static string Normalize(string path)
        {
            string[] parts = path.Replace('\\', '/').Split('/');
            var kept = new List<string>(parts.Length);
            foreach (string part in parts)
            {
                if (part == "." || part.Length == 0 && kept.Count > 0) continue;
                if (part == ".." && kept.Count > 0 && kept[kept.Count - 1] is not ("" or "..")) kept.RemoveAt(kept.Count - 1);
                else kept.Add(part);
            }
            return string.Join("/", kept);
        }

        private static object? Lookup(List<KeyValuePair<string, object?>> obj, string key)
        {
            foreach (KeyValuePair<string, object?> pair in obj) if (pair.Key == key) return pair.Value;
            return null;
        }

        private static string Text(object? value) => value switch
        {
            null => "null",
            double d => d.ToString("R", CultureInfo.InvariantCulture),
            string s => s,
            _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
        };
    }
}
