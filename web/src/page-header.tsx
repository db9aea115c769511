import type { ReactNode } from 'react';

interface PageHeaderProps {
  /** The navigation section the page sits in ("Security"): the breadcrumb's first step. */
  section: string;
  title: string;
  /** The page's main button ("+ New Connector"), beside the title. */
  action: ReactNode;
  /** One or two sentences on what the page holds. */
  children: ReactNode;
}

/** Breadcrumb, title with the page's main action, and the lede: the same on every page. */
export function PageHeader({ section, title, action, children }: PageHeaderProps) {
  return (
    <header className="page-header">
      <nav aria-label="Breadcrumb" className="breadcrumb">
        <ol>
          <li>{section}</li>
          <li aria-current="page">{title}</li>
        </ol>
      </nav>
      <div className="page-title-row">
        {/* Focused on navigation, so that a screen reader announces the new page. */}
        <h1 tabIndex={-1}>{title}</h1>
        {action}
      </div>
      <p className="page-lede">{children}</p>
    </header>
  );
}
