//! `ListOpportunities` as B3's load generator calls it: each opportunity of
//! the page is framed but left encoded, as pgbench's libpq frames the rows
//! of its page without converting a value. Decoding 50 opportunities into
//! `pb::Opportunity` (a `String` per field, a hash map of attributes) took
//! the generator ~40% of its CPU, on the cores the service and PostgreSQL
//! share with it (issue 7).

use funnel_proto::v1 as pb;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

/// `pb::ListOpportunitiesResponse` with the opportunities undecoded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FramedPage {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub opportunities: Vec<prost::bytes::Bytes>,
    #[prost(string, tag = "2")]
    pub next_page_token: String,
}

const LIST_OPPORTUNITIES: &str = "/funnel.v1.PipelineService/ListOpportunities";

/// One page, its opportunities framed; an empty page is an error, since
/// every token the bench uses starts inside the table.
pub async fn list_opportunities(
    channel: Channel,
    request: pb::ListOpportunitiesRequest,
) -> Result<FramedPage, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|error| tonic::Status::unavailable(format!("channel not ready: {error}")))?;
    let codec = tonic_prost::ProstCodec::<pb::ListOpportunitiesRequest, FramedPage>::default();
    let page = grpc
        .unary(tonic::Request::new(request), PathAndQuery::from_static(LIST_OPPORTUNITIES), codec)
        .await?
        .into_inner();
    if page.opportunities.is_empty() {
        return Err(tonic::Status::internal("an empty page where the table has rows"));
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn a_framed_page_holds_each_opportunity_as_sent() {
        let opportunity = |title: &str| pb::Opportunity { title: title.to_owned(), ..Default::default() };
        let page = pb::ListOpportunitiesResponse {
            opportunities: vec![opportunity("first"), opportunity("second")],
            next_page_token: "next".to_owned(),
        };
        let framed = FramedPage::decode(page.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(framed.next_page_token, "next");
        let titles: Vec<String> = framed
            .opportunities
            .iter()
            .map(|bytes| pb::Opportunity::decode(bytes.clone()).expect("an opportunity").title)
            .collect();
        assert_eq!(titles, ["first", "second"]);
    }
}
