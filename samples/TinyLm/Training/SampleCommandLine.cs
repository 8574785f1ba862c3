using System;
using System.CommandLine;
using System.Globalization;

namespace TransformerGen.Samples;

/// <summary>
/// What the training samples' command lines share (System.CommandLine): options that take a positive count, and running
/// a command so that a command line that does not parse exits with 2, as every other wrong argument of theirs does.
/// </summary>
public static class SampleCommandLine
{
    /// <summary>Exit code of a wrong argument (a bad option, an unwritable --out, a checkpoint that cannot be resumed).</summary>
    public const int UsageError = 2;

    /// <summary>An option that takes an integer of at least <paramref name="minimum"/>.</summary>
    public static Option<int> Count(string name, string description, int defaultValue, int minimum = 1, string helpName = "N")
    {
        var option = new Option<int>(name) { Description = description, HelpName = helpName, DefaultValueFactory = _ => defaultValue };
        option.Validators.Add(result =>
        {
            int value = result.GetValueOrDefault<int>();
            if (value < minimum) result.AddError($"{name} needs an integer of at least {minimum}, got {value}.");
        });
        return option;
    }

    /// <summary>An option that takes a number of at least <paramref name="minimum"/> (a learning rate, a temperature).</summary>
    public static Option<float> Number(string name, string description, float defaultValue, float minimum, string helpName = "X")
    {
        var option = new Option<float>(name) { Description = description, HelpName = helpName, DefaultValueFactory = _ => defaultValue };
        option.Validators.Add(result =>
        {
            float value = result.GetValueOrDefault<float>();
            if (!(value >= minimum) || float.IsInfinity(value)) result.AddError($"{name} needs a finite number of at least {minimum}, got {value}.");
        });
        return option;
    }

    /// <summary>
    /// Parses <paramref name="args"/> with numbers read the invariant way and runs the command's action. <c>--help</c>
    /// prints the options; a command line with errors prints them and exits with <see cref="UsageError"/>.
    /// </summary>
    public static int Run(RootCommand command, string[] args)
    {
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        ParseResult parsed = command.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors) Console.Error.WriteLine(error.Message);
            Console.Error.WriteLine($"see {command.Name} --help");
            return UsageError;
        }
        return parsed.Invoke();
    }
}
