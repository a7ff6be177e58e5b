// Chat templates: recognise a model's template family from the Jinja source its GGUF
// (tokenizer.chat_template) or tokenizer_config.json (chat_template) carries, and render a conversation
// the way that template renders it. We do not embed a Jinja interpreter: each family's logic is written
// out here and checked against Jinja2's rendering of the published templates (tests/golden/chat_template).
// An unrecognised template is an error; the caller may fall back to raw text and must say so in its
// Manifest, because the prompt format changes what is measured.
#pragma once
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qb::formats {
class GgufFile;
}

namespace qb::tokenizer {

class Tokenizer;

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", "tool"
  std::string content;
};

enum class ChatFamily { ChatML, Qwen3, Llama3, Llama2, Mistral, Gemma, Gemma3, Phi3, Phi3System, Zephyr };

class ChatTemplate {
 public:
  // Throws qb::Error("unrecognised chat template ...") when no family's markers are present.
  static ChatTemplate recognise(std::string_view jinja_source);
  static ChatTemplate from_gguf(const formats::GgufFile& file);           // throws if the key is absent
  static ChatTemplate from_tokenizer_config(std::string_view config_json);  // tokenizer_config.json text

  ChatFamily family() const { return family_; }
  // For the Manifest: "chatml", "chatml-qwen3", "llama3", "llama2", "mistral", "gemma", "gemma3", "phi3",
  // "phi3-system", "zephyr".
  const std::string& name() const { return name_; }
  const std::string& default_system() const { return default_system_; }  // ChatML templates that inject one

  // Renders the conversation. bos/eos are the token texts the template inserts (bos_token, eos_token);
  // throws qb::Error where the template itself raises (e.g. Gemma with a system message, roles that do
  // not alternate) or for a role the family cannot express.
  std::string apply(std::span<const ChatMessage> messages, bool add_generation_prompt, std::string_view bos,
                    std::string_view eos) const;
  // Same, with bos/eos taken from the tokenizer (empty where it has none). Encode the result with
  // add_special = false (the template already placed BOS where it wants it) and parse_special = true.
  std::string apply(std::span<const ChatMessage> messages, bool add_generation_prompt, const Tokenizer& tok) const;

 private:
  ChatTemplate(ChatFamily f, std::string name) : family_(f), name_(std::move(name)) {}
  ChatFamily family_;
  std::string name_;
  std::string default_system_;
};

}  // namespace qb::tokenizer
