using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace TransformerGen.Generator
{
    /// <summary>
    /// Checks calls into a generated model where the length of the argument is known at compile time: an array
    /// created in the call (<c>new int[n]</c>, <c>new[] { … }</c>) or a <c>stackalloc</c>. <c>Forward</c> needs
    /// exactly <c>Batch·SeqLen</c> tokens and as many targets (<c>Batch·TargetSeqLen</c> for an encoder–decoder,
    /// <c>Batch</c> for a sequence classifier); <c>Append</c> takes at most the positions the decoder holds.
    /// </summary>
    [DiagnosticAnalyzer(LanguageNames.CSharp)]
    public sealed class CallSiteAnalyzer : DiagnosticAnalyzer
    {
        /// <inheritdoc />
        public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } =
            ImmutableArray.Create(DiagnosticDescriptors.ForwardLengthMismatch, DiagnosticDescriptors.AppendTooLong);

        /// <inheritdoc />
        public override void Initialize(AnalysisContext context)
        {
            context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
            context.EnableConcurrentExecution();
            context.RegisterCompilationStartAction(start =>
            {
                INamedTypeSymbol? attribute = start.Compilation.GetTypeByMetadataName(Parser.AttributeFullName);
                if (attribute is null) return; // the attributes assembly is not referenced: nothing to check
                start.RegisterOperationAction(c => AnalyzeInvocation(c, attribute), OperationKind.Invocation);
            });
        }

        private static void AnalyzeInvocation(OperationAnalysisContext context, INamedTypeSymbol attribute)
        {
            var invocation = (IInvocationOperation)context.Operation;
            string name = invocation.TargetMethod.Name;
            if (name != "Forward" && name != "Append") return;
            ITypeSymbol? receiver = invocation.Instance?.Type;
            if (receiver is not INamedTypeSymbol model) return;
            AttributeData? declaration = model.GetAttributes().FirstOrDefault(a => SymbolEqualityComparer.Default.Equals(a.AttributeClass, attribute));
            if (declaration is null) return;
            int batch = Named(declaration, "Batch", 1), seqLen = Named(declaration, "SeqLen", 0);
            if (batch <= 0 || seqLen <= 0) return; // the declaration itself is reported by the generator
            int architecture = Named(declaration, "Architecture", EnumValues.DecoderOnly);
            int targetSeqLen = Named(declaration, "TargetSeqLen", seqLen);
            if (targetSeqLen <= 0) return;

            foreach (IArgumentOperation argument in invocation.Arguments)
            {
                if (argument.Parameter is null || argument.Parameter.Type is not INamedTypeSymbol { Name: "ReadOnlySpan" or "Span" }) continue;
                long? length = ConstantLength(argument.Value);
                if (length is null) continue;
                if (name == "Forward")
                {
                    (string what, long needed) = ForwardLength(argument.Parameter.Name, architecture, Named(declaration, "Head", EnumValues.Classification), batch, seqLen, targetSeqLen);
                    if (length != needed)
                        context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.ForwardLengthMismatch, argument.Syntax.GetLocation(),
                            model.Name, argument.Parameter.Name, length, what, needed));
                }
                else
                {
                    // An encoder–decoder's Append feeds the decoder, which holds TargetSeqLen positions.
                    (string window, int positions) = architecture == EnumValues.EncoderDecoder ? ("TargetSeqLen", targetSeqLen) : ("SeqLen", seqLen);
                    if (length > positions || length == 0)
                        context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.AppendTooLong, argument.Syntax.GetLocation(),
                            model.Name, length, window, positions));
                }
            }
        }

        /// <summary>The ids Forward needs in one argument, and how that number is made (for the message).</summary>
        private static (string What, long Needed) ForwardLength(string parameter, int architecture, int head, int batch, int seqLen, int targetSeqLen)
        {
            string tokens = $"Batch·SeqLen = {batch}·{seqLen}";
            if (parameter != "targets") return (tokens, (long)batch * seqLen);
            if (architecture == EnumValues.EncoderDecoder) return ($"Batch·TargetSeqLen = {batch}·{targetSeqLen}", (long)batch * targetSeqLen);
            if (architecture == EnumValues.EncoderOnly && head == EnumValues.Classification) return ("Batch (one class per sequence)", batch);
            return (tokens, (long)batch * seqLen);
        }

        private static int Named(AttributeData attribute, string name, int fallback)
        {
            foreach (var pair in attribute.NamedArguments)
                if (pair.Key == name && pair.Value.Value is int value) return value;
            return fallback;
        }

        /// <summary>The length of an array or stackalloc created right in the argument, when it is a constant.</summary>
        private static long? ConstantLength(IOperation value)
        {
            while (value is IConversionOperation conversion) value = conversion.Operand;
            if (value is IArrayCreationOperation array && array.DimensionSizes.Length == 1)
                return array.DimensionSizes[0].ConstantValue is { HasValue: true, Value: int n } ? n : null;
            // stackalloc has no operation of its own; read its syntax.
            switch (value.Syntax)
            {
                case StackAllocArrayCreationExpressionSyntax explicitStackalloc:
                    if (explicitStackalloc.Initializer is { } init) return init.Expressions.Count;
                    if (explicitStackalloc.Type is ArrayTypeSyntax arrayType && arrayType.RankSpecifiers.Count == 1
                        && arrayType.RankSpecifiers[0].Sizes.Count == 1 && value.SemanticModel is { } model)
                        return model.GetConstantValue(arrayType.RankSpecifiers[0].Sizes[0]) is { HasValue: true, Value: int n } ? n : null;
                    return null;
                case ImplicitStackAllocArrayCreationExpressionSyntax implicitStackalloc:
                    return implicitStackalloc.Initializer.Expressions.Count;
                default:
                    return null;
            }
        }
    }
}
