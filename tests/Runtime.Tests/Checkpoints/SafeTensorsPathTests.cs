using System;
using System.IO;
using Xunit;
using static TransformerGen.Tests.Checkpoints.TensorTables;

namespace TransformerGen.Tests.Checkpoints;

/// <summary>
/// Bad output paths: <see cref="SafeTensors.PrepareOutputPath"/> checks one before training, and <see cref="SafeTensors.Save(string, System.Collections.Generic.IReadOnlyList{ParameterTensor}, ReadOnlySpan{float}, System.Collections.Generic.IReadOnlyDictionary{string, string}?)"/>
/// names what is wrong instead of letting File.Move's exception escape.
/// </summary>
public sealed class SafeTensorsPathTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("tg-paths-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string PathOf(string name) => Path.Combine(_folder, name);

    private static readonly System.Collections.Generic.List<ParameterTensor> Tensors = Table(("w", [3, 5]), ("b", [5]));

    private static float[] Buffer() => RandomBuffer(20, 1);

    [Fact]
    public void An_existing_folder_means_a_file_inside_it()
    {
        Directory.CreateDirectory(PathOf("models"));
        Assert.Equal(Path.Combine(PathOf("models"), "m.safetensors"), SafeTensors.PrepareOutputPath(PathOf("models"), "m.safetensors"));
        Assert.Empty(Directory.GetFileSystemEntries(PathOf("models"))); // the probe is gone
    }

    [Fact]
    public void A_path_ending_in_a_separator_is_a_folder_and_is_created()
    {
        string path = PathOf("new") + Path.DirectorySeparatorChar;
        Assert.Equal(Path.Combine(PathOf("new"), "m.safetensors"), SafeTensors.PrepareOutputPath(path, "m.safetensors"));
        Assert.True(Directory.Exists(PathOf("new")));
    }

    [Fact]
    public void A_file_path_is_kept_and_its_missing_folders_are_created()
    {
        string path = Path.Combine(PathOf("a"), "b", "m.safetensors");
        Assert.Equal(path, SafeTensors.PrepareOutputPath(path, "other.safetensors"));
        Assert.True(Directory.Exists(Path.Combine(PathOf("a"), "b")));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void A_path_below_a_file_fails_at_once_with_a_message()
    {
        File.WriteAllText(PathOf("notes.txt"), "text");
        var e = Assert.Throws<IOException>(() => SafeTensors.PrepareOutputPath(Path.Combine(PathOf("notes.txt"), "m.safetensors"), "m.safetensors"));
        Assert.StartsWith($"the output path '{Path.Combine(PathOf("notes.txt"), "m.safetensors")}' cannot be used: its folder '{PathOf("notes.txt")}' cannot be created", e.Message);
        Assert.Equal("text", File.ReadAllText(PathOf("notes.txt")));
    }

    [Fact]
    public void A_folder_where_no_file_can_be_created_fails_at_once()
    {
        // /proc refuses new files even to root, so this holds whoever runs the tests.
        if (!Directory.Exists("/proc/self")) return;
        var e = Assert.Throws<IOException>(() => SafeTensors.PrepareOutputPath("/proc/m.safetensors", "m.safetensors"));
        Assert.StartsWith("the output path '/proc/m.safetensors' cannot be written: no file can be created in the folder '/proc'", e.Message);
    }

    [Fact]
    public void A_folder_whose_file_name_is_a_directory_is_refused()
    {
        Directory.CreateDirectory(Path.Combine(PathOf("models"), "m.safetensors"));
        var e = Assert.Throws<IOException>(() => SafeTensors.PrepareOutputPath(PathOf("models"), "m.safetensors"));
        Assert.Contains("which is a directory; give a file name", e.Message);
    }

    [Fact]
    public void Save_to_a_directory_says_so_and_writes_nothing()
    {
        Directory.CreateDirectory(PathOf("models"));
        var e = Assert.Throws<IOException>(() => SafeTensors.Save(PathOf("models"), Tensors, Buffer()));
        Assert.Equal($"cannot save '{PathOf("models")}': it is a directory; name a file inside it, such as '{Path.Combine(PathOf("models"), "model.safetensors")}'", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(PathOf("models")));
        Assert.Single(Directory.GetFileSystemEntries(_folder));
    }

    [Fact]
    public void Save_into_a_missing_folder_names_the_folder()
    {
        string path = Path.Combine(PathOf("missing"), "m.safetensors");
        var e = Assert.Throws<DirectoryNotFoundException>(() => SafeTensors.Save(path, Tensors, Buffer()));
        Assert.Equal($"cannot save '{path}': the folder '{PathOf("missing")}' does not exist", e.Message);
    }

    [Fact]
    public void Save_into_a_folder_that_cannot_be_written_names_the_folder()
    {
        if (!Directory.Exists("/proc/self")) return;
        var e = Assert.Throws<IOException>(() => SafeTensors.Save("/proc/m.safetensors", Tensors, Buffer()));
        Assert.StartsWith("cannot save '/proc/m.safetensors': no file can be created in the folder '/proc' (", e.Message);
    }

    [Fact]
    public void A_failed_rename_names_the_reason_and_keeps_the_written_data()
    {
        // The target becomes a directory after the data is written: the rename fails, and the written file is kept.
        string path = PathOf("m.safetensors");
        float[] buffer = Buffer();
        string? temporary = null;
        var e = Assert.Throws<IOException>(() => SafeTensors.Save(path, Tensors, buffer, null, beforeCommit: t =>
        {
            temporary = t;
            Directory.CreateDirectory(path);
        }));
        Assert.Equal($"cannot save '{path}': it is a directory. The data was written to '{temporary}', which is kept; rename it, or save to another path", e.Message);
        Assert.IsAssignableFrom<IOException>(e.InnerException);

        var loaded = new float[buffer.Length];
        SafeTensors.Load(temporary!, Tensors, loaded);
        Assert.Equal(buffer, loaded);
    }
}
