using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace TransformerGen.Generator
{
    /// <summary>
    /// A source location as plain data (file, span, line span), so it can sit in a cached pipeline value without
    /// holding the syntax tree alive; turned back into a <see cref="Location"/> only when a diagnostic is reported.
    /// </summary>
    internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
    {
        public Location ToLocation() => Location.Create(FilePath, Span, LineSpan);

        public static LocationInfo? From(Location? location)
        {
            if (location is null || location.SourceTree is null) return null;
            return new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);
        }

        public static LocationInfo? From(SyntaxNode? node) => node is null ? null : From(node.GetLocation());
    }

    /// <summary>
    /// A diagnostic as equatable data: the descriptor's id, where, and the message arguments.
    /// <see cref="Diagnostic"/> itself has no value equality and must not sit in a pipeline value.
    /// </summary>
    internal sealed record DiagnosticInfo(DiagnosticDescriptor Descriptor, LocationInfo? Location, EquatableArray<string> MessageArgs)
    {
        public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, LocationInfo? location, params object[] args)
        {
            var strings = new string[args.Length];
            for (int i = 0; i < args.Length; i++)
                strings[i] = System.Convert.ToString(args[i], System.Globalization.CultureInfo.InvariantCulture) ?? "";
            return new DiagnosticInfo(descriptor, location, new EquatableArray<string>(strings));
        }

        public Diagnostic ToDiagnostic()
        {
            var args = new object[MessageArgs.Count];
            for (int i = 0; i < args.Length; i++) args[i] = MessageArgs[i];
            return Diagnostic.Create(Descriptor, Location?.ToLocation() ?? Microsoft.CodeAnalysis.Location.None, args);
        }
    }
}
