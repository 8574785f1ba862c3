using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TransformerGen.Samples.Hub;

namespace TransformerGen.Samples.Serving;

/// <summary>Which of the models a server is compiled with serves a folder: the one whose compiled model_type its config.json has.</summary>
public static class ServedModelChoice
{
    /// <summary>
    /// The model of <paramref name="models"/> whose <paramref name="modelType"/> <paramref name="folder"/>'s config.json has
    /// (of several, the one whose <paramref name="compiledConfig"/> it agrees with or is closest to: see <see cref="ModelTypeChoice.Choose"/>);
    /// with one model, that one whatever the folder holds (the folder check then says what differs or is missing).
    /// </summary>
    /// <param name="sample">The sample folder named in the advice to compile it for another model (<c>samples/Chat</c>).</param>
    /// <param name="compiledConfig">The text of the config.json each model was compiled from; without it, the first model of the folder's model_type.</param>
    /// <exception cref="StartupException">No model has the folder's model_type, or there is no config.json to tell.</exception>
    public static T For<T>(IReadOnlyList<T> models, string folder, Func<T, string> modelType, Func<T, string> repository, string sample, Func<T, string>? compiledConfig = null)
        where T : class
    {
        if (models.Count == 1 || !Directory.Exists(folder)) return models[0];
        string config = Path.Combine(folder, "config.json");
        if (!File.Exists(config))
            throw new StartupException($"The model folder '{folder}' lacks config.json, which says which model it holds ({string.Join(" or ", models.Select(repository))}).");
        var error = new StringWriter();
        return ModelTypeChoice.Choose(models, modelType, repository, config, sample, error, compiledConfig) ?? throw new StartupException(error.ToString().Trim());
    }
}
