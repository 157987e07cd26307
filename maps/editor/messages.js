// The server's messages in the reader's language. The API words its errors and the
// violations of a plan in English (one wording for scripts, logs and the editor alike);
// the editor recognises each kind it can meet by its shape and shows it in Chinese, the
// figures and codes carried over. A message of no known kind is shown as it came.
// tests/test_editor_messages.py feeds this every message the server's own checks and
// routes produce, so a new wording without a rule here fails there.

import { getLang } from "./i18n.js";

const LEVELS = { street: "街道", community: "社区", grid: "网格", microgrid: "微网格" };
const LAYERS = {
  streets: "街道",
  communities: "社区",
  grids: "网格",
  microgrids: "微网格",
  buildings: "楼栋",
  units: "单元",
  study_area: "研究区",
};
const FLAGS = {
  oversize: "超大（不可再分）",
  vertical: "垂直微网格",
  infeasible: "无法满足限值",
  empty: "无住户",
  dedicated: "专属网格",
};
const ROLES = { viewer: "查看者", planner: "规划员", admin: "管理员" };
const COLUMNS = {
  code: "编码",
  parent_code: "上级编码",
  households: "户数",
  population: "人口",
  name: "名称",
};

const level = (x) => LEVELS[x] ?? x;
const layer = (x) => LAYERS[x] ?? x;
const N = String.raw`(-?[\d.,]+(?:e[+-]?\d+)?)`;

// [pattern, Chinese]: the pattern matches the whole problem (after the "plan: where: "
// prefix WanggeError puts before it); the Chinese takes the groups as {1}, {2}... or a
// function of them. Order matters where one pattern is a prefix of another.
const RULES = [
  // sizes (geo/validate.py size_violations): the plan's limits per level
  [String.raw`${N} households < ${N}`, "{1} 户，低于下限 {2} 户"],
  [String.raw`${N} households > ${N}`, "{1} 户，超过上限 {2} 户"],
  [String.raw`${N} people > ${N}`, "{1} 人，超过上限 {2} 人"],
  [String.raw`${N} km² > ${N} km²`, "面积 {1} km²，超过上限 {2} km²"],
  [String.raw`given (street|community|grid|microgrid): (.+)`, (m) => `给定${level(m[1])}：${tr(m[2])}`],
  [String.raw`(\w+): (.+?) \((.+)\)`, (m) => `${FLAGS[m[1]] ?? m[1]}：${tr(m[2])}（${tr(m[3])}）`, (m) => m[1] in FLAGS],
  [String.raw`(\w+): (.+)`, (m) => `${FLAGS[m[1]] ?? m[1]}：${tr(m[2])}`, (m) => m[1] in FLAGS],
  // notes the solver leaves on a flagged unit
  [
    String.raw`an indivisible unit of ${N} households > (grid|micro-grid|community) ceiling ${N}(.*)`,
    (m) => `不可分单元 ${m[1]} 户，超过${m[2] === "micro-grid" ? "微网格" : level(m[2])}上限 ${m[3]} 户${m[4] ? tr(m[4].replace(/^[:;,]\s*/, "")) : ""}`,
  ],
  [
    String.raw`${N} households > (grid|micro-grid|community) ceiling ${N}`,
    (m) => `${m[1]} 户，超过${m[2] === "micro-grid" ? "微网格" : level(m[2])}上限 ${m[3]} 户`,
  ],
  [String.raw`${N} households < grid floor ${N}`, "{1} 户，低于网格下限 {2} 户"],
  // shape, cover, nesting, overlap, codes (geo/validate.py, geo/assignment.py)
  [String.raw`in (\d+) pieces \(an island or exclave, 飞地\)`, "分成 {1} 块（飞地）"],
  [String.raw`${N} households fit one grid but lie in (\d+): (.+)`, "{1} 户本可归入一个网格，却分在 {2} 个网格：{3}"],
  [String.raw`parent (\S+) does not exist in (\w+)`, (m) => `上级 ${m[1]} 不在${layer(m[2])}中`],
  [String.raw`${N} m² lies outside its parent (\S+)`, "有 {1} m² 超出上级 {2}"],
  [String.raw`(\S+) has no (\w+) at all`, (m) => `${m[1]} 下没有任何${layer(m[2])}`],
  [String.raw`the (\w+) under (\S+) leave ${N} m² uncovered`, (m) => `${m[2]} 下的${layer(m[1])}留有 ${m[3]} m² 空隙`],
  [String.raw`overlaps (\S+) by ${N} m²`, "与 {1} 重叠 {2} m²"],
  [String.raw`code (\S+) is used twice`, "编码 {1} 重复使用"],
  // codes (geo/codes.py check_code)
  [String.raw`code '(.*)' is not all digits`, "编码 {1} 含有非数字字符"],
  [String.raw`code (\S+) has (\d+) digits; a (\w+) code has (\d+)`, (m) => `编码 ${m[1]} 为 ${m[2]} 位；${level(m[3])}编码应为 ${m[4]} 位`],
  [String.raw`code (\S+) ends in (0+); numbering starts at 1`, "编码 {1} 以 {2} 结尾；序号应从 1 开始"],
  [String.raw`code (\S+) does not start with its parent's code (\S+)`, "编码 {1} 不以上级编码 {2} 开头"],
  [String.raw`street is not under district (\S+)`, "街道不属于区县 {1}"],
  [String.raw`in no micro-grid`, "不在任何微网格中"],
  [
    String.raw`only (\S+) inside its micro-grid (\S+) \(the footprint overlaps another building or crosses a street\)`,
    "只有 {1} 在其微网格 {2} 内（楼栋轮廓与其他楼栋重叠，或跨越街道）",
  ],
  [String.raw`only (\S+) inside its micro-grid (\S+)(.*)`, "只有 {1} 在其微网格 {2} 内"],
  [String.raw`holds ${N} households but its buildings hold ${N}`, "记 {1} 户，但其楼栋合计 {2} 户"],
  [String.raw`holds ${N} households but its (\w+) hold ${N}`, (m) => `记 ${m[1]} 户，但其${layer(m[2])}合计 ${m[3]} 户`],
  [String.raw`${N} households of buildings are counted in no micro-grid`, "楼栋中有 {1} 户未计入任何微网格"],
  [String.raw`no (\w+) layer`, (m) => `缺少${layer(m[1])}图层`],
  [String.raw`(\w+) has no (\w+) column`, (m) => `${layer(m[1])}缺少${COLUMNS[m[2]] ?? m[2]}列`],
  [String.raw`skipped: no (.+) layer`, (m) => `已跳过：缺少${m[1].split(", ").map(layer).join("、")}图层`],
  // signing in and access (api/auth.py, wangge/scopes.py)
  [String.raw`the API key is unknown, revoked or expired`, "API 密钥无效：不存在、已吊销或已过期"],
  [String.raw`this needs an API key \(Authorization: Bearer KEY\).*`, "此操作需要 API 密钥（请求头 Authorization: Bearer KEY），由管理员用 wangge users add 生成"],
  [
    String.raw`account '(.+)' is a (viewer|planner|admin); this needs the (viewer|planner|admin) role`,
    (m) => `账号「${m[1]}」是${ROLES[m[2]]}，此操作需要${ROLES[m[3]]}权限`,
  ],
  [
    String.raw`(.+?) (\d+) grid\(s\) outside the scope of account '(.+)' \((.*)\): (.+); nothing was saved`,
    "有 {2} 个网格不在账号「{3}」的管辖范围（{4}）内：{5}；未保存任何修改",
  ],
  // versions and edits (data/store.py, wangge/editing.py, geo/assignment.py)
  [String.raw`based on version (\d+), but the latest is (\d+); reload and redo the change`, "修改基于版本 {1}，但最新版本已是 {2}；请重新加载后再修改"],
  [String.raw`grid (\S+) is locked; unlock it to move (\S+)`, "网格 {1} 已锁定；请先解锁再移动 {2}"],
  [String.raw`no unit '?([^']+?)'? in this plan`, "方案中没有单元 {1}"],
  [String.raw`no micro-grid (\S+)`, "没有微网格 {1}"],
  [String.raw`no grid (\S+)(?: in this version)?`, "没有网格 {1}"],
].map(([pattern, zh, when]) => [new RegExp(`^${pattern}$`), zh, when]);

function fill(zh, m) {
  return typeof zh === "function" ? zh(m) : zh.replace(/\{(\d)\}/g, (_, i) => m[Number(i)] ?? "");
}

// One problem (no prefix) in Chinese, or itself when no rule knows it.
function tr(problem) {
  for (const [re, zh, when] of RULES) {
    const m = re.exec(problem);
    if (m && (!when || when(m))) return fill(zh, m);
  }
  return problem;
}

// A server message in the page's language: in Chinese the known kinds are translated
// (the "plan: where: " prefix an error carries is kept), in English it is left as sent.
export function serverText(text, lang = getLang()) {
  if (lang === "en" || typeof text !== "string" || !text) return text;
  const whole = tr(text);
  if (whole !== text) return whole;
  // "demo: base_version: based on version 3, but …": translate the last part
  const parts = text.split(": ");
  for (let i = 1; i < parts.length; i += 1) {
    const rest = parts.slice(i).join(": ");
    const done = tr(rest);
    if (done !== rest) return `${parts.slice(0, i).join(": ")}：${done}`;
  }
  return text;
}

// Whether serverText knows this message (for the tests: every message the server makes).
export function known(text) {
  return serverText(text, "zh") !== text;
}
