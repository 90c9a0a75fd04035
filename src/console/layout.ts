/** The page around every console view: navigation by role, sign-out, the assets. */
import { type Html, h } from "./html.js";
import type { Session } from "./session.js";

export interface NavItem {
  readonly path: string;
  readonly label: string;
  readonly roles: readonly Session["role"][];
}

export const NAV: readonly NavItem[] = [
  { path: "/console/approvals", label: "Approvals", roles: ["operator", "approver"] },
  { path: "/console/writs", label: "Live writs", roles: ["operator"] },
  { path: "/console/kill", label: "Kill switch", roles: ["operator"] },
  { path: "/console/denials", label: "Denials", roles: ["operator"] },
  { path: "/console/findings", label: "Findings", roles: ["operator"] },
  { path: "/console/audit", label: "Audit", roles: ["operator"] },
  { path: "/console/metrics", label: "Metrics", roles: ["operator"] },
  { path: "/console/agents", label: "Agents", roles: ["operator"] },
  { path: "/console/maturity", label: "Maturity", roles: ["operator"] },
  { path: "/console/shadow", label: "Shadow", roles: ["operator"] },
];

export function page(opts: {
  title: string;
  session?: Session | undefined;
  current?: string | undefined;
  body: Html;
  /** Extra data for the page's script, as data-* attributes on <body>. */
  data?: Readonly<Record<string, string>> | undefined;
}): Html {
  const s = opts.session;
  const nav = s
    ? h`<nav aria-label="Console"><ul>${NAV.filter((n) => n.roles.includes(s.role)).map(
        (n) =>
          h`<li><a href="${n.path}"${n.path === opts.current ? h` aria-current="page"` : ""}>${n.label}</a></li>`,
      )}</ul>
      <form method="post" action="/console/logout" class="logout">
        <input type="hidden" name="csrf" value="${s.csrf}">
        <span class="who">${s.role}: ${s.who}</span>
        <button type="submit">Sign out</button>
      </form></nav>`
    : "";
  const data = Object.entries(opts.data ?? {}).map(([k, v]) => h` data-${k}="${v}"`);
  return h`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title} · writ</title>
<link rel="icon" href="/console/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/console/static/console.css">
<script src="/console/static/console.js" defer></script>
</head>
<body${data}>
<a class="skip" href="#main">Skip to content</a>
<header><a class="brand" href="/console/">writ</a>${nav}</header>
<main id="main" tabindex="-1">
<h1>${opts.title}</h1>
${opts.body}
</main>
</body>
</html>`;
}
