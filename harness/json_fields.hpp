#pragma once
// One list of JSON fields per struct, driving both directions. A struct whose members are
// its JSON fields (same names) lists them once:
//
//   struct Fairness {
//     double jain_index = 0;
//     std::optional<double> max_min_ratio, jain_worst;
//     ACCEPTBENCH_JSON_FIELDS_AND_OPTIONAL((jain_index, max_min_ratio), (jain_worst));
//   };
//
// (ACCEPTBENCH_JSON_FIELDS(a, b, ...) when all are required). That defines
// `template <class Self, class F> static void fields(Self& s, F&& f)` calling
// f("jain_index", s.jain_index), ..., f("jain_worst", s.jain_worst, kOptional), and
// json_fields::write(x) / json_fields::read<T>(j, "what") do the rest (Self is const T when
// writing). A struct may also write fields() by hand. The rules:
// - required: reading, absent is an error. A std::optional member may be null (nullopt) and
//   is written as null when nullopt (e.g. fairness.max_min_ratio).
// - optional (kOptional): may be absent (a field added after files of the same schema were
//   written): reading leaves the member at its default. A std::optional member that is
//   nullopt is then not written at all, so an older file writes out as it was read (a plain member
//   given a default instead is written back at that default).
// - A member of a type with its own to_json()/from_json() members goes through them (a struct
//   with derived fields, e.g. RunConfig); one with fields() is a nested object; anything else
//   uses nlohmann's conversions (enums: an ADL to_json/from_json pair beside the enum).
//   nlohmann writes NaN as null, so a floating-point field reads null back as NaN.
// Reading throws std::invalid_argument naming the field's path, e.g.
// "malformed summary: fairness.jain_index: not a number: \"high\"".

#include <concepts>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

namespace acceptbench::json_fields {

enum Presence { kRequired, kOptional };

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};

class Writer;
class Reader;

template <class T>
concept HasFields = requires(const T& c, T& m, Writer& w, Reader& r) {
  T::fields(c, w);
  T::fields(m, r);
};

template <class T>
concept HasJsonMembers = requires(const T& t, const nlohmann::json& j) {
  { t.to_json() } -> std::convertible_to<nlohmann::json>;
  { T::from_json(j) } -> std::convertible_to<T>;
};

class Writer {
 public:
  explicit Writer(nlohmann::json& out) : out_(out) {}

  template <class T>
  void operator()(const char* name, const T& v, Presence p = kRequired) {
    if constexpr (IsOptional<T>::value) {
      if (v) {
        out_[name] = encode(*v);
      } else if (p == kRequired) {
        out_[name] = nullptr;
      }
    } else {
      out_[name] = encode(v);
    }
  }

  template <class T>
  static nlohmann::json encode(const T& v);

 private:
  nlohmann::json& out_;
};

// The fields of `v` as a JSON object (not its own to_json(): this is what that calls).
template <HasFields T>
nlohmann::json write(const T& v) {
  nlohmann::json j = nlohmann::json::object();
  Writer w(j);
  T::fields(v, w);
  return j;
}

template <class T>
nlohmann::json Writer::encode(const T& v) {
  if constexpr (HasJsonMembers<T>) {
    return v.to_json();
  } else if constexpr (HasFields<T>) {
    return write(v);
  } else {
    return nlohmann::json(v);
  }
}

class Reader {
 public:
  Reader(const nlohmann::json& in, std::string path) : in_(in), path_(std::move(path)) {}

  template <class T>
  void operator()(const char* name, T& v, Presence p = kRequired) {
    const std::string at = path_.empty() ? name : path_ + "." + name;
    const auto it = in_.find(name);
    if (it == in_.end()) {
      if (p == kRequired) throw std::invalid_argument(at + ": missing");
      return;
    }
    if constexpr (IsOptional<T>::value) {
      if (it->is_null()) {
        v.reset();
        return;
      }
      typename T::value_type x{};
      decode(*it, x, at);
      v = std::move(x);
    } else {
      decode(*it, v, at);
    }
  }

  template <class T>
  static void decode(const nlohmann::json& j, T& v, const std::string& at) {
    if constexpr (HasJsonMembers<T>) {
      try {
        v = T::from_json(j);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(at + ": " + e.what());
      }
    } else if constexpr (HasFields<T>) {
      if (!j.is_object()) throw std::invalid_argument(at + ": not an object");
      Reader r(j, at);
      T::fields(v, r);
    } else if constexpr (std::is_floating_point_v<T>) {
      if (j.is_null()) {
        v = std::numeric_limits<T>::quiet_NaN();
      } else if (j.is_number()) {
        v = j.get<T>();
      } else {
        throw std::invalid_argument(at + ": not a number: " + j.dump());
      }
    } else {
      try {
        v = j.template get<T>();
      } catch (const std::exception& e) {  // nlohmann's type errors; an enum's invalid_argument
        throw std::invalid_argument(at + ": " + e.what());
      }
    }
  }

 private:
  const nlohmann::json& in_;
  std::string path_;
};

// A T from the object `j` through its fields(); throws std::invalid_argument
// "malformed WHAT: <field path>: <why>".
template <HasFields T>
T read(const nlohmann::json& j, const std::string& what) {
  T v{};
  try {
    if (!j.is_object()) throw std::invalid_argument("not an object");
    Reader r(j, "");
    T::fields(v, r);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("malformed " + what + ": " + e.what());
  }
  return v;
}

}  // namespace acceptbench::json_fields

// ACCEPTBENCH_JSON_FOR_EACH(M, a, b, c) is M(a) M(b) M(c), for up to 64 arguments: a macro
// that names its own continuation (_AGAIN) is expanded once more by each of the 64 nested
// rescans of _EXPAND, one argument a rescan.
#define ACCEPTBENCH_JSON_PARENS ()
#define ACCEPTBENCH_JSON_EXPAND(...) \
  ACCEPTBENCH_JSON_EXPAND16(         \
      ACCEPTBENCH_JSON_EXPAND16(ACCEPTBENCH_JSON_EXPAND16(ACCEPTBENCH_JSON_EXPAND16(__VA_ARGS__))))
#define ACCEPTBENCH_JSON_EXPAND16(...) \
  ACCEPTBENCH_JSON_EXPAND4(ACCEPTBENCH_JSON_EXPAND4(ACCEPTBENCH_JSON_EXPAND4(ACCEPTBENCH_JSON_EXPAND4(__VA_ARGS__))))
#define ACCEPTBENCH_JSON_EXPAND4(...) \
  ACCEPTBENCH_JSON_EXPAND1(ACCEPTBENCH_JSON_EXPAND1(ACCEPTBENCH_JSON_EXPAND1(ACCEPTBENCH_JSON_EXPAND1(__VA_ARGS__))))
#define ACCEPTBENCH_JSON_EXPAND1(...) __VA_ARGS__
#define ACCEPTBENCH_JSON_FOR_EACH(macro, ...) \
  __VA_OPT__(ACCEPTBENCH_JSON_EXPAND(ACCEPTBENCH_JSON_STEP(macro, __VA_ARGS__)))
#define ACCEPTBENCH_JSON_STEP(macro, a, ...) \
  macro(a) __VA_OPT__(ACCEPTBENCH_JSON_AGAIN ACCEPTBENCH_JSON_PARENS(macro, __VA_ARGS__))
#define ACCEPTBENCH_JSON_AGAIN() ACCEPTBENCH_JSON_STEP
#define ACCEPTBENCH_JSON_UNPAREN(...) __VA_ARGS__

#define ACCEPTBENCH_JSON_REQUIRED(member) f(#member, s.member);
#define ACCEPTBENCH_JSON_OPTIONAL(member) f(#member, s.member, ::acceptbench::json_fields::kOptional);

// fields() over the members named, all required (json_fields.hpp's rules); ends with the
// caller's ';'.
#define ACCEPTBENCH_JSON_FIELDS(...)                                  \
  template <class Self, class F>                                      \
  static void fields(Self& s, F&& f) {                                \
    ACCEPTBENCH_JSON_FOR_EACH(ACCEPTBENCH_JSON_REQUIRED, __VA_ARGS__) \
  }                                                                   \
  static_assert(true)

// fields() over (required members...) and (optional members...).
#define ACCEPTBENCH_JSON_FIELDS_AND_OPTIONAL(required, optional)                            \
  template <class Self, class F>                                                            \
  static void fields(Self& s, F&& f) {                                                      \
    ACCEPTBENCH_JSON_FOR_EACH(ACCEPTBENCH_JSON_REQUIRED, ACCEPTBENCH_JSON_UNPAREN required) \
    ACCEPTBENCH_JSON_FOR_EACH(ACCEPTBENCH_JSON_OPTIONAL, ACCEPTBENCH_JSON_UNPAREN optional) \
  }                                                                                         \
  static_assert(true)
