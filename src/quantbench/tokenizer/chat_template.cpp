// Chat template families (see chat_template.h). Each render function mirrors its template's Jinja logic
// line by line, including Python string semantics (str.strip for Jinja's trim, split/lstrip for Qwen3's
// <think> handling), so the output is byte-identical to transformers' apply_chat_template.
#include "quantbench/tokenizer/chat_template.h"

#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/tokenizer/tokenizer.h"
#include "quantbench/tokenizer/utf8.h"

namespace qb::tokenizer {

namespace {

bool has(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

// Python's str.isspace code points (what Jinja's trim, i.e. str.strip(), removes).
bool py_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string py_strip(std::string_view s) {
  // Collect code point boundaries; invalid bytes count as non-space (they cannot come from Python).
  size_t begin = 0, end = s.size();
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    const auto cp = decode_utf8_at(s, pos);
    if (!cp || !py_space(*cp)) {
      begin = start;
      break;
    }
    begin = pos;
  }
  size_t last_non_space_end = begin;
  for (size_t pos = begin; pos < s.size();) {
    const size_t start = pos;
    const auto cp = decode_utf8_at(s, pos);
    if (!cp) pos = start + 1;
    if (!cp || !py_space(*cp)) last_non_space_end = pos;
  }
  end = last_non_space_end;
  return std::string(s.substr(begin, end > begin ? end - begin : 0));
}

std::string lstrip_char(std::string_view s, char c) {
  size_t i = 0;
  while (i < s.size() && s[i] == c) ++i;
  return std::string(s.substr(i));
}
std::string rstrip_char(std::string_view s, char c) {
  size_t n = s.size();
  while (n > 0 && s[n - 1] == c) --n;
  return std::string(s.substr(0, n));
}
std::string strip_char(std::string_view s, char c) { return lstrip_char(rstrip_char(s, c), c); }

// Python's s.split(sep)[0] and [-1].
std::string_view split_first(std::string_view s, std::string_view sep) {
  const size_t p = s.find(sep);
  return p == std::string_view::npos ? s : s.substr(0, p);
}
std::string_view split_last(std::string_view s, std::string_view sep) {
  const size_t p = s.rfind(sep);
  return p == std::string_view::npos ? s : s.substr(p + sep.size());
}

[[noreturn]] void template_error(const std::string& name, const std::string& what) {
  fail("chat template '{}': {}", name, what);
}

void check_alternation(const std::string& name, std::span<const ChatMessage> msgs) {
  for (size_t i = 0; i < msgs.size(); ++i)
    if ((msgs[i].role == "user") != (i % 2 == 0))
      template_error(name, "Conversation roles must alternate user/assistant/user/assistant/...");
}

// A ChatML template that writes a fixed system message when the conversation has none, e.g.
// '<|im_start|>system\nYou are Qwen, ...<|im_end|>\n' as one string literal.
std::string find_default_system(std::string_view src) {
  const std::string_view head = "<|im_start|>system";
  for (size_t p = src.find(head); p != std::string_view::npos; p = src.find(head, p + 1)) {
    size_t q = p + head.size();
    if (src.substr(q, 2) == "\\n") q += 2;
    else if (src.substr(q, 1) == "\n") q += 1;
    else continue;
    const size_t e = src.find("<|im_end|>", q);
    if (e == std::string_view::npos) continue;
    const std::string_view body = src.substr(q, e - q);
    if (body.empty() || body.find_first_of("'\"{}+") != std::string_view::npos) continue;  // not one literal
    std::string out;
    for (size_t i = 0; i < body.size(); ++i) {
      if (body[i] == '\\' && i + 1 < body.size()) {
        const char n = body[++i];
        out.push_back(n == 'n' ? '\n' : n == 't' ? '\t' : n);
      } else {
        out.push_back(body[i]);
      }
    }
    return out;
  }
  return {};
}

std::string render_chatml(std::span<const ChatMessage> m, bool gen, const std::string& default_system) {
  std::string out;
  if (!default_system.empty() && (m.empty() || m[0].role != "system"))
    out += "<|im_start|>system\n" + default_system + "<|im_end|>\n";
  for (const auto& msg : m) {
    if (!default_system.empty() && msg.role != "user" && msg.role != "system" && msg.role != "assistant")
      fail("chat template 'chatml': role '{}' is not supported with this template", msg.role);
    out += "<|im_start|>" + msg.role + "\n" + msg.content + "<|im_end|>\n";
  }
  if (gen) out += "<|im_start|>assistant\n";
  return out;
}

// Qwen3's template without tools: system first, <think> blocks kept only after the last user query.
std::string render_qwen3(std::span<const ChatMessage> m, bool gen) {
  std::string out;
  if (!m.empty() && m[0].role == "system") out += "<|im_start|>system\n" + m[0].content + "<|im_end|>\n";
  size_t last_query = m.empty() ? 0 : m.size() - 1;
  for (size_t k = m.size(); k-- > 0;) {
    const auto& c = m[k].content;
    const bool tool_response = c.rfind("<tool_response>", 0) == 0 && c.size() >= 16 &&
                               c.compare(c.size() - 16, 16, "</tool_response>") == 0;
    if (m[k].role == "user" && !tool_response) {
      last_query = k;
      break;
    }
  }
  for (size_t i = 0; i < m.size(); ++i) {
    const auto& msg = m[i];
    const bool last = i + 1 == m.size();
    if (msg.role == "user" || (msg.role == "system" && i != 0)) {
      out += "<|im_start|>" + msg.role + "\n" + msg.content + "<|im_end|>\n";
    } else if (msg.role == "assistant") {
      std::string content = msg.content, reasoning;
      if (has(msg.content, "</think>")) {
        content = lstrip_char(split_last(msg.content, "</think>"), '\n');
        reasoning = lstrip_char(split_last(rstrip_char(split_first(msg.content, "</think>"), '\n'), "<think>"), '\n');
      }
      if (i > last_query && (last || !reasoning.empty())) {
        out += "<|im_start|>assistant\n<think>\n" + strip_char(reasoning, '\n') + "\n</think>\n\n" + lstrip_char(content, '\n');
      } else {
        out += "<|im_start|>assistant\n" + content;
      }
      out += "<|im_end|>\n";
    } else if (msg.role == "tool") {
      if (i == 0 || m[i - 1].role != "tool") out += "<|im_start|>user";
      out += "\n<tool_response>\n" + msg.content + "\n</tool_response>";
      if (last || m[i + 1].role != "tool") out += "<|im_end|>\n";
    } else if (msg.role != "system") {
      fail("chat template 'chatml-qwen3': role '{}' is not supported", msg.role);
    }
  }
  if (gen) out += "<|im_start|>assistant\n";
  return out;
}

std::string render_llama3(std::span<const ChatMessage> m, bool gen, std::string_view bos) {
  std::string out;
  for (size_t i = 0; i < m.size(); ++i) {
    if (i == 0) out += bos;
    out += "<|start_header_id|>" + m[i].role + "<|end_header_id|>\n\n" + py_strip(m[i].content) + "<|eot_id|>";
  }
  if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string render_llama2(std::span<const ChatMessage> m, std::string_view bos, std::string_view eos) {
  std::span<const ChatMessage> loop = m;
  const bool has_system = !m.empty() && m[0].role == "system";
  if (has_system) loop = m.subspan(1);
  check_alternation("llama2", loop);
  std::string out;
  for (size_t i = 0; i < loop.size(); ++i) {
    std::string content;
    if (i == 0 && has_system) content.append("<<SYS>>\n").append(m[0].content).append("\n<</SYS>>\n\n");
    content.append(loop[i].content);
    if (loop[i].role == "user") {
      out.append(bos).append("[INST] ").append(py_strip(content)).append(" [/INST]");
    } else if (loop[i].role == "assistant") {
      out.append(" ").append(py_strip(content)).append(" ").append(eos);
    }
  }
  return out;
}

std::string render_mistral(std::span<const ChatMessage> m, std::string_view bos, std::string_view eos) {
  std::string out(bos);
  for (size_t i = 0; i < m.size(); ++i) {
    if ((m[i].role == "user") != (i % 2 == 0))
      template_error("mistral", "Conversation roles must alternate user/assistant/user/assistant/...");
    if (m[i].role == "user") {
      out += "[INST] " + m[i].content + " [/INST]";
    } else if (m[i].role == "assistant") {
      out += m[i].content + std::string(eos);
    } else {
      template_error("mistral", "Only user and assistant roles are supported!");
    }
  }
  return out;
}

std::string render_gemma(std::span<const ChatMessage> m, bool gen, std::string_view bos, bool system_prefix) {
  const std::string name = system_prefix ? "gemma3" : "gemma";
  std::string out(bos), prefix;
  std::span<const ChatMessage> loop = m;
  if (!m.empty() && m[0].role == "system") {
    if (!system_prefix) template_error(name, "System role not supported");
    prefix = m[0].content + "\n\n";
    loop = m.subspan(1);
  }
  for (size_t i = 0; i < loop.size(); ++i) {
    if ((loop[i].role == "user") != (i % 2 == 0))
      template_error(name, "Conversation roles must alternate user/assistant/user/assistant/...");
    const std::string role = loop[i].role == "assistant" ? "model" : loop[i].role;
    out += "<start_of_turn>" + role + "\n" + (i == 0 ? prefix : std::string()) + py_strip(loop[i].content) + "<end_of_turn>\n";
  }
  if (gen) out += "<start_of_turn>model\n";
  return out;
}

std::string render_phi3(std::span<const ChatMessage> m, std::string_view bos) {
  std::string out(bos);
  for (const auto& msg : m) {
    if (msg.role == "user") out += "<|user|>\n" + msg.content + "<|end|>\n<|assistant|>\n";
    else if (msg.role == "assistant") out += msg.content + "<|end|>\n";
  }
  return out;
}

std::string render_phi3_system(std::span<const ChatMessage> m, bool gen, std::string_view eos) {
  std::string out;
  for (const auto& msg : m)
    if (msg.role == "system" || msg.role == "user" || msg.role == "assistant")
      out += "<|" + msg.role + "|>\n" + msg.content + "<|end|>\n";
  out += gen ? std::string("<|assistant|>\n") : std::string(eos);
  return out;
}

std::string render_zephyr(std::span<const ChatMessage> m, bool gen, std::string_view eos) {
  std::string out;
  for (size_t i = 0; i < m.size(); ++i) {
    const auto& msg = m[i];
    if (msg.role == "user" || msg.role == "system" || msg.role == "assistant")
      out += "<|" + msg.role + "|>\n" + msg.content + std::string(eos) + "\n";
    if (i + 1 == m.size() && gen) out += "<|assistant|>\n";
  }
  return out;
}

}  // namespace

ChatTemplate ChatTemplate::recognise(std::string_view src) {
  if (has(src, "<|im_start|>")) {
    if (has(src, "<think>") && has(src, "last_query_index")) return ChatTemplate(ChatFamily::Qwen3, "chatml-qwen3");
    ChatTemplate t(ChatFamily::ChatML, "chatml");
    t.default_system_ = find_default_system(src);
    return t;
  }
  if (has(src, "<|start_header_id|>")) return ChatTemplate(ChatFamily::Llama3, "llama3");
  if (has(src, "[INST]")) {
    if (has(src, "<<SYS>>")) return ChatTemplate(ChatFamily::Llama2, "llama2");
    return ChatTemplate(ChatFamily::Mistral, "mistral");
  }
  if (has(src, "<start_of_turn>")) {
    if (has(src, "first_user_prefix")) return ChatTemplate(ChatFamily::Gemma3, "gemma3");
    return ChatTemplate(ChatFamily::Gemma, "gemma");
  }
  if (has(src, "<|user|>")) {
    if (has(src, "<|end|>")) {
      if (has(src, "<|system|>")) return ChatTemplate(ChatFamily::Phi3System, "phi3-system");
      return ChatTemplate(ChatFamily::Phi3, "phi3");
    }
    return ChatTemplate(ChatFamily::Zephyr, "zephyr");
  }
  const std::string head(src.substr(0, 60));
  fail("unrecognised chat template (no ChatML, Llama-3, [INST], Gemma, Phi-3 or Zephyr markers), starting '{}'", head);
}

ChatTemplate ChatTemplate::from_gguf(const formats::GgufFile& file) {
  const auto src = file.find_string("tokenizer.chat_template");
  if (!src) fail("{}: metadata tokenizer.chat_template: missing", file.path());
  try {
    return recognise(*src);
  } catch (const std::exception& e) {
    rethrow_with_context(e, file.path() + ": metadata tokenizer.chat_template");
  }
}

ChatTemplate ChatTemplate::from_tokenizer_config(std::string_view config_json) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(config_json.begin(), config_json.end());
  } catch (const std::exception& e) {
    rethrow_with_context(e, "tokenizer_config.json");
  }
  if (!j.contains("chat_template") || !j.at("chat_template").is_string())
    fail("tokenizer_config.json: chat_template: missing or not a string (named template lists are not supported)");
  return recognise(j.at("chat_template").get<std::string>());
}

std::string ChatTemplate::apply(std::span<const ChatMessage> m, bool gen, std::string_view bos, std::string_view eos) const {
  switch (family_) {
    case ChatFamily::ChatML: return render_chatml(m, gen, default_system_);
    case ChatFamily::Qwen3: return render_qwen3(m, gen);
    case ChatFamily::Llama3: return render_llama3(m, gen, bos);
    case ChatFamily::Llama2: return render_llama2(m, bos, eos);
    case ChatFamily::Mistral: return render_mistral(m, bos, eos);
    case ChatFamily::Gemma: return render_gemma(m, gen, bos, false);
    case ChatFamily::Gemma3: return render_gemma(m, gen, bos, true);
    case ChatFamily::Phi3: return render_phi3(m, bos);
    case ChatFamily::Phi3System: return render_phi3_system(m, gen, eos);
    case ChatFamily::Zephyr: return render_zephyr(m, gen, eos);
  }
  fail("chat template: unknown family");
}

std::string ChatTemplate::apply(std::span<const ChatMessage> m, bool gen, const Tokenizer& tok) const {
  const std::string bos = tok.bos() == kNoToken ? std::string() : tok.token(tok.bos()).text;
  const std::string eos = tok.eos() == kNoToken ? std::string() : tok.token(tok.eos()).text;
  return apply(m, gen, bos, eos);
}

}  // namespace qb::tokenizer
