// The shell: who is signed in, navigation shaped by the role (the API enforces it anyway), and the views.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, useSession } from './api';
import { href, useRoute } from './router';
import type { Role, Session, SignedIn } from './types';
import { ErrorNote, Loading } from './ui';
import { AuditRecordView } from './views/audit-record';
import { AuditSearch } from './views/audit-search';
import { KeysView } from './views/keys';
import { ModelsView } from './views/models';
import { ReceiptView } from './views/receipt';
import { SignInView } from './views/sign-in';
import { TenantsView } from './views/tenants';
import { UsageView } from './views/usage';
import { VerifyView } from './views/verify';

interface Section {
  path: string;
  label: string;
  roles: Role[];
}

const AUDIT: Role[] = ['admin', 'auditor', 'tenant_admin'];

export const SECTIONS: Section[] = [
  { path: 'audit', label: 'Audit log', roles: AUDIT },
  { path: 'verify', label: 'Verify chain', roles: AUDIT },
  { path: 'usage', label: 'Usage', roles: AUDIT },
  { path: 'receipt', label: 'Check receipt', roles: ['admin', 'auditor', 'tenant_admin', 'user'] },
  { path: 'keys', label: 'API keys', roles: ['admin', 'tenant_admin'] },
  { path: 'tenants', label: 'Tenants & quotas', roles: ['admin', 'tenant_admin'] },
  { path: 'models', label: 'Models', roles: ['admin'] },
];

export function visibleSections(session: SignedIn): Section[] {
  return SECTIONS.filter((section) => section.roles.includes(session.role));
}

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [error, setError] = useState<unknown>(null);

  const refresh = () =>
    api<Session>('GET', '/console/api/session').then((s) => {
      useSession(s);
      setSession(s);
    }, setError);

  useEffect(() => {
    void refresh();
  }, []);

  if (error) return <ErrorNote error={error} />;
  if (!session) return <Loading what="the console" />;
  if (!session.signed_in) return <SignInView oidc={session.oidc} onSignedIn={refresh} />;
  return (
    <Shell
      session={session}
      onSignOut={() => {
        void api('DELETE', '/console/api/session').finally(refresh);
      }}
    />
  );
}

function Shell({ session, onSignOut }: { session: SignedIn; onSignOut: () => void }) {
  const route = useRoute();
  const sections = visibleSections(session);
  const section = route[0] ?? sections[0]?.path ?? '';
  const main = useRef<HTMLElement>(null);
  // A new view moves focus to its content, as a page load would, for keyboard and screen-reader users.
  useEffect(() => {
    main.current?.querySelector<HTMLElement>('h1')?.focus();
  }, [route.join('/')]);

  return (
    <div class="shell">
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), main.current?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Airlock console</span>
        <nav aria-label="Sections">
          <ul>
            {sections.map((s) => (
              <li key={s.path}>
                <a href={href(s.path)} aria-current={section === s.path ? 'page' : undefined}>
                  {s.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span title={`principal ${session.principal}`}>
            {session.name || session.principal} · {session.role.replace('_', ' ')}
            {session.global ? ' · all tenants' : ` · tenant ${session.tenant}`}
          </span>
          <button type="button" class="secondary" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        <View route={route} section={section} session={session} />
      </main>
    </div>
  );
}

function View({ route, section, session }: { route: string[]; section: string; session: SignedIn }) {
  if (!visibleSections(session).some((s) => s.path === section)) {
    return (
      <section>
        <h1 tabIndex={-1}>Nothing to show</h1>
        <p>Your role ({session.role}) has no such view. The sections above are the ones open to you.</p>
      </section>
    );
  }
  switch (section) {
    case 'audit':
      return route[1] === 'records' && route[2] ? (
        <AuditRecordView sequence={Number(route[2])} session={session} />
      ) : (
        <AuditSearch session={session} />
      );
    case 'verify':
      return <VerifyView />;
    case 'usage':
      return <UsageView />;
    case 'receipt':
      return <ReceiptView session={session} />;
    case 'keys':
      return <KeysView session={session} />;
    case 'tenants':
      return <TenantsView session={session} />;
    case 'models':
      return <ModelsView />;
    default:
      return null;
  }
}
