using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace TransformerGen.Generator
{
    /// <summary>
    /// A small strict JSON reader (RFC 8259) for safetensors headers: objects become
    /// <c>List&lt;KeyValuePair&lt;string, object?&gt;&gt;</c> (order and duplicates kept), arrays <c>List&lt;object?&gt;</c>,
    /// numbers <c>double</c>, plus strings, booleans and null. The generator cannot take System.Text.Json as a
    /// dependency without shipping it beside the analyzer, and a header needs only this much.
    /// </summary>
    internal sealed class MiniJson
    {
        private readonly string _text;
        private int _at;

        private MiniJson(string text) => _text = text;

        /// <exception cref="FormatException">The text is not one JSON value; the message gives the offset.</exception>
        public static object? Parse(string text)
        {
            var reader = new MiniJson(text);
            object? value = reader.Value(depth: 0);
            reader.SkipSpace();
            if (reader._at != text.Length) throw reader.Error("unexpected text after the value");
            return value;
        }

        private FormatException Error(string what) => new($"{what} at offset {_at}");

        private void SkipSpace()
        {
            while (_at < _text.Length && _text[_at] is ' ' or '\t' or '\r' or '\n') _at++;
        }

        private object? Value(int depth)
        {
            if (depth > 64) throw Error("nesting deeper than 64");
            SkipSpace();
            if (_at >= _text.Length) throw Error("unexpected end");
            char c = _text[_at];
            switch (c)
            {
                case '{': return Object(depth);
                case '[': return Array(depth);
                case '"': return String();
                case 't': return Literal("true", true);
                case 'f': return Literal("false", false);
                case 'n': return Literal("null", null);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) return Number();
                    throw Error($"unexpected character '{c}'");
            }
        }

        private object? Literal(string word, object? value)
        {
            if (string.CompareOrdinal(_text, _at, word, 0, word.Length) != 0) throw Error("invalid literal");
            _at += word.Length;
            return value;
        }

        private List<KeyValuePair<string, object?>> Object(int depth)
        {
            var members = new List<KeyValuePair<string, object?>>();
            _at++; // {
            SkipSpace();
            if (_at < _text.Length && _text[_at] == '}') { _at++; return members; }
            while (true)
            {
                SkipSpace();
                if (_at >= _text.Length || _text[_at] != '"') throw Error("expected a member name");
                string key = String();
                SkipSpace();
                if (_at >= _text.Length || _text[_at] != ':') throw Error("expected ':'");
                _at++;
                members.Add(new KeyValuePair<string, object?>(key, Value(depth + 1)));
                SkipSpace();
                if (_at < _text.Length && _text[_at] == ',') { _at++; continue; }
                if (_at < _text.Length && _text[_at] == '}') { _at++; return members; }
                throw Error("expected ',' or '}'");
            }
        }

        private List<object?> Array(int depth)
        {
            var items = new List<object?>();
            _at++; // [
            SkipSpace();
            if (_at < _text.Length && _text[_at] == ']') { _at++; return items; }
            while (true)
            {
                items.Add(Value(depth + 1));
                SkipSpace();
                if (_at < _text.Length && _text[_at] == ',') { _at++; continue; }
                if (_at < _text.Length && _text[_at] == ']') { _at++; return items; }
                throw Error("expected ',' or ']'");
            }
        }

        private string String()
        {
            _at++; // opening quote
            var result = new StringBuilder();
            while (true)
            {
                if (_at >= _text.Length) throw Error("unterminated string");
                char c = _text[_at++];
                if (c == '"') return result.ToString();
                if (c < ' ') throw Error("control character in a string");
                if (c != '\\') { result.Append(c); continue; }
                if (_at >= _text.Length) throw Error("unterminated escape");
                char e = _text[_at++];
                switch (e)
                {
                    case '"': case '\\': case '/': result.Append(e); break;
                    case 'b': result.Append('\b'); break;
                    case 'f': result.Append('\f'); break;
                    case 'n': result.Append('\n'); break;
                    case 'r': result.Append('\r'); break;
                    case 't': result.Append('\t'); break;
                    case 'u':
                        if (_at + 4 > _text.Length || !int.TryParse(_text.Substring(_at, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int code))
                            throw Error("invalid \\u escape");
                        result.Append((char)code);
                        _at += 4;
                        break;
                    default: throw Error($"invalid escape '\\{e}'");
                }
            }
        }

        private double Number()
        {
            int start = _at;
            if (_text[_at] == '-') _at++;
            while (_at < _text.Length && (char.IsDigit(_text[_at]) || _text[_at] is '.' or 'e' or 'E' or '+' or '-')) _at++;
            string token = _text.Substring(start, _at - start);
            if (!double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
                throw Error($"invalid number '{token}'");
            return value;
        }
    }
}
